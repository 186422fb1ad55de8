"""Hostile text renders as text in every HTML view: checked by parsing the page and in headless Chromium.

Transcripts, persona names, tokens and model replies are text from other people or models. Each
hostile string below goes into every kind of view a report has (title, section title, paragraph,
note, table cell and header, caption, preformatted block, circuitsvis token views, plotly data);
the page must keep exactly its own scripts, gain no element or event handler, and show each string
as the characters it is. A hostile script that ran would change ``document.title`` or add
``#injected``.
"""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import plotly.graph_objects as go
import pytest

from workbench.report import Report

HOSTILE = {
    "script": "<script>document.title='PWNED'</script>",
    "img": "<img src=x onerror=\"document.title='PWNED'\">",
    "closers": "</p></td></table></pre></div></section><b id=injected>bold</b>",
    "script_break": "</script><script>document.body.append(Object.assign(document.createElement('i'),{id:'injected'}))</script>",
    "attribute": "\" onmouseover=\"document.title='PWNED'\" data-x='",
    "entities": "&amp; &lt;b&gt; &#x3C;script&#x3E; &nbsp; & &#0; &bogus;",
    "comment": "<!-- not a comment --> <![CDATA[ x ]]> <?php ?>",
    "rtl": "\u202eevil.exe\u202c \u2066isolate\u2069",
    "separators": "line\u2028separator\u2029paragraph\u0085next",
    "combining": "e\u0301 \u200d\u200b\ufeff 日本語 🏴\u200d☠️ 𝔘𝔫𝔦",
}
SURROGATE = "lone \ud800 surrogate"  # valid JSON, not encodable: shown as U+FFFD
SHOWN = {**HOSTILE, "surrogate": "lone \ufffd surrogate"}
TITLE = f"Run {HOSTILE['script']}"
TOKEN_VIEWS = 2
PLOTS = 1


def hostile_report() -> Report:
    """One report using every kind of view, each fed every hostile string."""
    report = Report(TITLE)
    texts = [*HOSTILE.values(), SURROGATE]
    for name, text in HOSTILE.items():
        report.section(f"{name} {text}").text(text).note(text).preformatted(text)
    table = report.section("table")
    table.table([{"persona": t, t: 0.5} for t in texts], caption=HOSTILE["closers"])
    views = report.section("token views")
    views.colored_tokens(texts, [0.1 * i for i in range(len(texts))])
    views.circuitsvis("TextNeuronActivations", tokens=texts, activations=[[[0.5]] for _ in texts])
    figure = go.Figure(go.Bar(x=texts, y=list(range(len(texts))), hovertext=texts, name=HOSTILE["img"]))
    report.section("plot").plotly(figure.update_layout(title=HOSTILE["closers"], xaxis_title=HOSTILE["entities"]))
    return report


class PageParser(HTMLParser):
    """Scripts, tags, ids, event-handler attributes and the text outside scripts of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts = 0
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.handlers: list[str] = []
        self.text: list[str] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids += [value or "" for name, value in attrs if name == "id"]
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts += 1
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.script_text if self._in_script else self.text).append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    return hostile_report().write(tmp_path_factory.mktemp("html") / "hostile.html")


def test_hostile_text_is_text_in_the_parsed_page(page: Path, record_property):
    html = page.read_text(encoding="utf-8")
    parsed = PageParser()
    parsed.feed(html)
    # Two libraries in the head, one script per token view, one per plotly figure: none from text.
    assert parsed.scripts == 2 + TOKEN_VIEWS + PLOTS
    assert "injected" not in parsed.ids and not parsed.handlers
    assert not {"img", "b", "i"} & set(parsed.tags)
    text = "".join(parsed.text)
    for name, shown in SHOWN.items():
        assert text.count(shown) >= (1 if name == "surrogate" else 5), name  # title, p, note, pre, cell
    assert text.count(TITLE) == 2  # <title> and <h1>
    # circuitsvis puts tokens into the page as HTML: the props handed to it must hold escaped text.
    renders = [re.fullmatch(r'CircuitsVis\.render\("cv-\w+", CircuitsVis\.\w+, (.*)\);', script.strip())
               for script in parsed.script_text]
    views = [json.loads(match.group(1)) for match in renders if match]
    assert len(views) == TOKEN_VIEWS
    for props in views:
        assert not any("<" in token for token in props["tokens"])
        assert [unescape(token) for token in props["tokens"]] == list(SHOWN.values())
    record_property("counts", {"hostile_strings": len(SHOWN), "tags": len(parsed.tags), "scripts": parsed.scripts})


def test_hostile_text_is_text_in_chromium(page: Path):
    from browser import console_errors, open_page

    with open_page(page, settle_s=1.5) as driver:
        assert driver.title == TITLE, "a hostile script changed the title"
        assert not driver.find_elements("css selector", "#injected, img, [onerror], [onmouseover]")
        assert not console_errors(driver)
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('section p, section pre, td, th, caption, h2'))"
            ".map(e => e.textContent)"
        )
        tokens = driver.execute_script(
            "return Array.from(document.querySelectorAll('.cv-view')).map(e => e.textContent)"
        )
        plot_labels = driver.execute_script(
            "return Array.from(document.querySelectorAll('.xtick text, .gtitle, .g-xtitle text')).map(e => e.textContent)"
        )
    for name, text in SHOWN.items():
        assert shown.count(text) >= (1 if name == "surrogate" else 4), f"{name} not shown as text"
    # plotly reads its own markup in labels (<b>, <br>, entities): Section.plotly escapes them first.
    assert [without_spaces(t) for t in plot_labels] == [without_spaces(t) for t in
                                                         [*SHOWN.values(), HOSTILE["closers"], HOSTILE["entities"]]]
    assert len(tokens) == TOKEN_VIEWS
    for view in tokens:
        for name, text in SHOWN.items():
            assert without_spaces(text) in without_spaces(view), f"token {name} not shown in {view[:80]!r}"


def without_spaces(text: str) -> str:
    """Text minus whitespace: circuitsvis shows spaces and line separators in tokens as no-break spaces."""
    return "".join(c for c in text if not c.isspace() and c != "\ufeff")


def test_hostile_transcript_in_the_drift_page(model, tmp_path):
    """A hostile transcript file (hostile name too) through ``workbench drift``'s writer: the page's
    title, token views and tables show the text; the script-bearing tokens never run."""
    import json as json_module

    import torch

    from vectors.drift.measure import measure_drift
    from vectors.drift.report import drift_report
    from workbench.report import write_run
    from vectors.drift.transcripts import load_transcript
    from workbench.artifacts import LayerVectors

    from browser import console_errors, open_page

    assistant = [f"{HOSTILE['img']} {HOSTILE['closers']}", f"{HOSTILE['rtl']} {HOSTILE['script_break']} {HOSTILE['entities']}"]
    conversation = [{"role": "user", "content": HOSTILE["script"]}, {"role": "assistant", "content": assistant[0]},
                    {"role": "user", "content": HOSTILE["comment"]}, {"role": "assistant", "content": assistant[1]}]
    source = tmp_path / "<b id=injected>&amp;\u202ex.json"
    source.write_text(json_module.dumps({"model": HOSTILE["attribute"], "conversation": conversation}), encoding="utf-8")
    axis = LayerVectors(torch.randn(model.cfg.n_layers, model.cfg.d_model), {"method": HOSTILE["script"]})
    result = measure_drift(model, load_transcript(source), axis, 10, (-1.0, 1.0))
    data = write_run(tmp_path / "out", result.to_summary(), drift_report(result), summary_name="drift.json",
                     report_name="drift.html")
    page = tmp_path / "out" / "drift.html"

    parsed = PageParser()
    parsed.feed(page.read_text(encoding="utf-8"))
    assert "injected" not in parsed.ids and not parsed.handlers and not {"img", "b", "i"} & set(parsed.tags)
    assert data["metadata"]["model"] == HOSTILE["attribute"]
    with open_page(page, settle_s=1.5) as driver:
        assert driver.title == f"Drift: {source.name}"
        assert not driver.find_elements("css selector", "#injected, img, [onerror], [onmouseover]")
        assert not console_errors(driver)
        views = driver.execute_script("return Array.from(document.querySelectorAll('.cv-view')).map(e => e.textContent)")
    assert [without_spaces(v) for v in views] == [without_spaces(text) for text in assistant]
