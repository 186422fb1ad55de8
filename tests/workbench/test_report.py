from html.parser import HTMLParser

import plotly.graph_objects as go

from workbench.report import Report

HOSTILE = '<script>alert(1)</script></div>&amp; \u202e\u2028 "quoted"'


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.text, self.tags, self._in_script = 0, [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "script":
            self.scripts += 1
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if not self._in_script:
            self.text.append(data)


def test_hostile_text_stays_text_and_libraries_inlined_once(tmp_path):
    report = Report(f"Run {HOSTILE}")
    section = report.section("Drift")
    section.text(HOSTILE).table([{"persona": HOSTILE, "cos": 0.5}])
    section.plotly(go.Figure(go.Scatter(y=[1, 2]))).plotly(go.Figure(go.Bar(y=[3])))
    section.colored_tokens(["<script>", "alert(1)", "</script>"], [0.1, -0.2, 0.3])
    page = report.write(tmp_path / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    # 2 library scripts in the head + 2 plotly figure scripts + 1 token view; none from the text.
    assert parser.scripts == 5
    assert HOSTILE in "".join(parser.text)
    assert page.count("Plotly.newPlot") == 2 and page.count("var CircuitsVis=") == 1
    assert "<script>alert(1)" not in page
    assert "\\u0026lt;script\\u0026gt;" in page  # circuitsvis renders tokens as HTML: escaped first


def test_hostile_tokens_show_as_text_in_chromium(tmp_path):
    from browser import console_errors, open_page

    report = Report("tokens")
    report.section("view").colored_tokens(["<img src=x onerror=\"document.title='pwned'\">", "</div>", "ok"], [0.2, -0.5, 1.0])
    path = report.write(tmp_path / "r.html")
    with open_page(path) as page:
        spans = [e.text for e in page.find_elements("css selector", ".cv-view .colored-tokens > span")]
        assert page.title == "tokens" and not console_errors(page)
        assert spans == ["<img src=x onerror=\"document.title='pwned'\">", "</div>", "ok"]


def test_links_are_escaped_and_only_relative_or_http():
    import pytest

    section = Report("links").section("s").link('sae/a"b/report.html', "<details>")
    assert '<a href="sae/a&quot;b/report.html">&lt;details&gt;</a>' in section.parts[-1]
    with pytest.raises(ValueError, match="javascript"):
        section.link("javascript:alert(1)", "click")
