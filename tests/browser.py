"""Headless Chromium (Debian's chromium + chromium-driver, driven by selenium) with the network blocked.

Tests that look at pages as a person would use :func:`open_page`; they are skipped, with the reason,
only where Chromium or its driver is missing.
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    # No network: every host resolves nowhere and any proxy use fails.
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--window-size=1280,1000",
]


def require_chromium() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("headless Chromium not installed (Debian packages chromium and chromium-driver)")
    pytest.importorskip("selenium", reason="selenium is needed to drive Chromium")
    return chromium, driver


@contextmanager
def open_page(path: Path, settle_s: float = 1.0):
    """Open a local HTML file; yields the selenium driver (console log via ``get_log('browser')``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(Path(path).resolve().as_uri())
        time.sleep(settle_s)
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
