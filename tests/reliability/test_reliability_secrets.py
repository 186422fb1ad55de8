"""Secrets: the API key comes from the environment only and is written nowhere.

A sentinel key is put in the environment; real runs then call :class:`FakeOpenAI` (which also
answers some requests with a 401 quoting the key back, as OpenAI does) and write everything a run
writes: caches with failure records, artifacts with provenance, a report, summary JSON, debug logs
of openai/httpx, stdout and stderr. The sentinel must reach the server (so the test means
something) and appear in none of those.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import torch

from openai_server import FakeOpenAI, Faults
from workbench.api import ApiConfig, ChatClient, ChatRequest
from workbench.artifacts import LayerVectors, atomic_write_text, provenance
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.errors import InputFormatError
from workbench.judge import judge_roles, judge_trait, role_judge_prompt
from workbench.report import Report

SENTINEL = f"sk-SENTINEL-{uuid.uuid4().hex}"


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Every log record of the run (openai and httpx at DEBUG included) written to ``run.log``."""
    path = tmp_path / "out" / "run.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def files_holding(root: Path, secret: str) -> list[str]:
    """Files under ``root`` whose bytes contain ``secret`` (raw, or as JSON would escape it)."""
    needles = {secret.encode(), json.dumps(secret).strip('"').encode()}
    return [str(p) for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def answer(request: dict) -> str:
    return "3" if request["model"] == "judge" else "Arr, I be a pirate of the seven seas."


def test_sentinel_key_in_no_cache_artifact_report_log_or_output(tmp_path, monkeypatch, capfd, debug_log,
                                                                 record_property):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    out = tmp_path / "out"
    faults = Faults(rate_401_echo=0.25, rate_500=0.1, rate_429=0.1, seed=4)
    with FakeOpenAI(answer=answer, logprobs=lambda r: {"80": math.log(0.6), "90": math.log(0.4)},
                    faults=faults) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        gen_config = ApiConfig.from_env("gen", backoff_base_s=0.001, requests_per_second=1000, max_retries=2)
        judge_config = dataclasses.replace(gen_config, model="judge")
        generator, judge = ChatClient(gen_config), ChatClient(judge_config)

        prompts = [f"question {i}" for i in range(16)]
        items = [(cache_key(q=p), ChatRequest(({"role": "user", "content": p},))) for p in prompts]
        records = run_cached(
            JsonlCache(out / "cache" / "gen.jsonl"), items,
            lambda batch: [{"response": r.text, "error": r.error} for r in generator.complete_many(batch)],
            batch_size=8, desc="generate",
        )
        pairs = [(cache_key(q=p), (role_judge_prompt("pirate"), p, r["response"] or "")) for p, r in zip(prompts, records)]
        roles = run_cached(JsonlCache(out / "cache" / "judge.jsonl"), pairs,
                           lambda batch: [s.to_record() for s in judge_roles(judge, batch)], batch_size=8, desc="judge")
        traits = judge_trait(judge, "piratey", [(p, r["response"] or "") for p, r in zip(prompts, records)])

    failures = [r["error"] for r in [*records, *roles] if r["error"]]
    assert any("Incorrect API key provided: [redacted]" in e for e in failures), failures
    assert all(req["headers"]["authorization"] == f"Bearer {SENTINEL}" for req in server.requests)
    assert server.injected["401_echo"] > 0

    LayerVectors(torch.randn(3, 4), provenance(method="test", generator=gen_config, judge=repr(judge_config),
                                               client=str(generator.client), env_key=gen_config.api_key_env)
                 ).save(out / "artifacts" / "vectors")
    report = Report(f"Run against {gen_config!r}")
    report.section("errors").table([{"item": i, "error": e} for i, e in enumerate(failures)])
    report.section("scores").table([s.to_record() for s in traits]).preformatted(json.dumps(records, indent=1))
    report.write(out / "report.html")
    atomic_write_text(out / "summary.json", json.dumps({"config": str(gen_config), "failures": failures}))
    print(json.dumps({"generator": repr(generator.config), "failures": failures}))
    logging.getLogger("workbench").warning("failures: %s", failures)
    try:
        ApiConfig.from_env("x", base_url="")
    except InputFormatError as exc:
        print(f"error: {exc}", file=__import__("sys").stderr)

    captured = capfd.readouterr()
    assert debug_log.stat().st_size > 0 and "openai" in debug_log.read_text()
    assert files_holding(tmp_path, SENTINEL) == []
    assert SENTINEL not in captured.out and SENTINEL not in captured.err
    assert "[redacted]" in captured.out
    record_property("counts", {"files": sum(p.is_file() for p in tmp_path.rglob("*")), "requests": len(server.requests),
                               "401_echo": server.injected["401_echo"], "failures": len(failures)})


def test_sentinel_key_absent_after_the_axis_pipeline_over_the_api(model, tmp_path, monkeypatch, capfd, debug_log,
                                                                   record_property):
    """The Assistant Axis pipeline with API generation and an API judge, as ``workbench axis --api``."""
    from vectors.axis.pipeline import AxisConfig, run_axis
    from vectors.axis.report import add_axis_sections
    from workbench.generate import Sampling

    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    out = tmp_path / "out"
    with FakeOpenAI(answer=answer, faults=Faults(rate_401_echo=0.1, seed=2)) as server:
        config = AxisConfig(n_roles=2, n_extraction=2, n_heldout=1, sampling=Sampling(max_new_tokens=6),
                            api_url=server.base_url, api_model="gen", judge_model="judge", progress=True)
        result = run_axis(model, config, out)
    report = Report(f"Assistant Axis: {result.summary['model']}")
    add_axis_sections(report, result)
    report.write(out / "report.html")
    atomic_write_text(out / "summary.json", json.dumps(result.summary, indent=2, default=str))
    print(json.dumps(result.summary, default=str))

    caches = "".join(p.read_text() for p in (out / "cache").glob("*.jsonl"))
    assert server.injected["401_echo"] > 0 and "Incorrect API key provided: [redacted]" in caches
    assert {req["headers"]["authorization"] for req in server.requests} == {f"Bearer {SENTINEL}"}
    captured = capfd.readouterr()
    assert files_holding(tmp_path, SENTINEL) == []
    assert SENTINEL not in captured.out and SENTINEL not in captured.err
    record_property("counts", {"files": sum(p.is_file() for p in tmp_path.rglob("*")), "requests": len(server.requests),
                               "401_echo": server.injected["401_echo"]})
