"""One offline HTML page per run: sections, escaped text, tables, plotly charts, circuitsvis views.

Offline and light: the plotly library and the circuitsvis bundle are each inlined **once** in the
page head (plotly ≈ 4.8 MB, circuitsvis ≈ 1.3 MB), and every chart or token view only adds its
data. All text from users, transcripts or models is escaped; data handed to scripts is JSON with
``<``, ``>`` and ``&`` escaped so no text can close a ``<script>`` element.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from workbench.artifacts import atomic_write_text


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (valid in JSON, e.g. a broken API answer, but not
    encodable as UTF-8) replaced by U+FFFD, so writing the page cannot fail on them."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def escape(text: Any) -> str:
    """HTML-escape any value's string form (quotes included)."""
    return html.escape(_encodable(str(text)), quote=True)


def script_json(value: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    return (
        _encodable(json.dumps(value, ensure_ascii=False, default=_to_list))
        .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _to_list(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-") or "section"


@dataclass
class Section:
    title: str
    parts: list[str] = field(default_factory=list)
    uses_plotly: bool = False
    uses_circuitsvis: bool = False

    def text(self, text: str) -> "Section":
        """A paragraph of plain (escaped) text."""
        self.parts.append(f"<p>{escape(text)}</p>")
        return self

    def note(self, text: str) -> "Section":
        """A highlighted caveat (e.g. 'no judge configured', 'base-model SAE on an -it model')."""
        self.parts.append(f'<p class="note">{escape(text)}</p>')
        return self

    def unavailable(self, figures: str | Sequence[str], reason: str) -> "Section":
        """The line that stands for figures the run could not compute (see :mod:`workbench.unavailable`)."""
        names = figures if isinstance(figures, str) else ", ".join(figures)
        self.parts.append(f'<p class="note unavailable"><b>{escape(names)} unavailable:</b> {escape(reason)}</p>')
        return self

    def table(self, rows: Sequence[dict[str, Any]], caption: str | None = None) -> "Section":
        """A table from a list of dicts (columns from the first row); floats shown to 4 digits."""
        if not rows:
            return self.text("(no rows)")
        columns = list(rows[0])
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows
        )
        cap = f"<caption>{escape(caption)}</caption>" if caption else ""
        self.parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def plotly(self, figure) -> "Section":
        """A plotly figure; the library itself is inlined once per page by :class:`Report`.

        Pass plain text for labels: plotly reads its own markup (``<b>``, ``<br>``, entities) in
        titles, names, tick and hover labels, so their ``&``, ``<``, ``>`` are escaped here and a
        persona named ``<b>x</b>`` shows as typed.
        """
        import plotly.io as pio

        self.uses_plotly = True
        spec = _plotly_text_escaped(figure.to_plotly_json())
        self.parts.append(pio.to_html(spec, full_html=False, include_plotlyjs=False, validate=False))
        return self

    def circuitsvis(self, element: str, **props: Any) -> "Section":
        """A circuitsvis view (e.g. ``"ColoredTokens", tokens=[...], values=[...]``) from the inlined bundle."""
        self.uses_circuitsvis = True
        view_id = f"cv-{uuid.uuid4().hex[:12]}"
        props = {k: _escape_tokens(v) if k in _TOKEN_PROPS else v for k, v in props.items() if v is not None}
        self.parts.append(
            f'<div id="{view_id}" class="cv-view"></div><script>'
            f'CircuitsVis.render("{view_id}", CircuitsVis.{element}, {script_json(props)});</script>'
        )
        return self

    def colored_tokens(self, tokens: Sequence[str], values: Sequence[float], **props: Any) -> "Section":
        """Tokens coloured by value (circuitsvis ``ColoredTokens``)."""
        return self.circuitsvis("ColoredTokens", tokens=list(tokens), values=[float(v) for v in values], **props)

    def link(self, href: str, text: str) -> "Section":
        """A paragraph with one link (e.g. to a detailed sub-report beside this page).

        Only relative and http(s) links: a ``javascript:`` href would run code on click.
        """
        scheme = urllib.parse.urlparse(href).scheme
        if scheme not in ("", "http", "https"):
            raise ValueError(f"refusing a {scheme}: link in a report (only relative or http(s) links)")
        self.parts.append(f'<p><a href="{escape(href)}">{escape(text)}</a></p>')
        return self

    def preformatted(self, text: str) -> "Section":
        self.parts.append(f"<pre>{escape(text)}</pre>")
        return self


# circuitsvis puts token strings into the page as raw HTML in every token view (ColoredTokens,
# ColoredTokensMulti, TextNeuronActivations, AttentionPatterns, TokenLogProbs): a token
# ``<img onerror=...>`` would run. These props are HTML-escaped so tokens show as the text they are.
_TOKEN_PROPS = ("tokens", "prompt", "top_k_tokens")


def _escape_tokens(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, (list, tuple)):
        return [_escape_tokens(item) for item in value]
    return value


# Figure keys whose strings plotly shows as (pseudo-HTML) text; anything else (colours, fonts,
# templates, enumerations, hovertemplate) is left alone.
_PLOTLY_TEXT_KEYS = frozenset({"text", "hovertext", "name", "x", "y", "labels", "ticktext", "categoryarray", "title"})


def _plotly_text_escaped(value: Any, key: str | None = None) -> Any:
    if isinstance(value, str):
        return html.escape(_encodable(value), quote=False) if key in _PLOTLY_TEXT_KEYS else value
    if isinstance(value, dict):
        return {k: v if k == "template" else _plotly_text_escaped(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plotly_text_escaped(item, key) for item in value]
    if getattr(value, "dtype", None) is not None and value.dtype.kind in "OUS":  # numpy arrays of strings
        return [_plotly_text_escaped(item, key) for item in value.tolist()]
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em}
th{background:#f3f3f3}caption{font-weight:bold;text-align:left}.note{background:#fff6d6;padding:.5em}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.6em}nav li{margin:.2em 0}
"""


@dataclass
class Report:
    """An offline HTML page: a table of contents and one block per section."""

    title: str
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    def render(self) -> str:
        head_scripts = []
        if any(s.uses_plotly for s in self.sections):
            from plotly.offline import get_plotlyjs

            head_scripts.append(f"<script>{get_plotlyjs()}</script>")
        if any(s.uses_circuitsvis for s in self.sections):
            head_scripts.append(f"<script>{_circuitsvis_bundle()}</script>")
        toc = "".join(f'<li><a href="#{_anchor(s.title)}">{escape(s.title)}</a></li>' for s in self.sections)
        body = "".join(
            f'<section id="{_anchor(s.title)}"><h2>{escape(s.title)}</h2>{"".join(s.parts)}</section>'
            for s in self.sections
        )
        return (
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(self.title)}</title>'
            f"<style>{_STYLE}</style>{''.join(head_scripts)}</head><body><h1>{escape(self.title)}</h1>"
            f"<nav><ol>{toc}</ol></nav>{body}</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, self.render())
        return path


def write_run(
    out: str | Path, summary: Any, report: Report | None = None, *,
    summary_name: str = "summary.json", report_name: str = "report.html",
) -> Any:
    """Write one run into ``out``: ``summary`` as JSON (``summary.json``) and ``report`` as its
    offline page (``report.html``); returns ``summary``. Every command and the demo write through
    here, so every run folder reads the same way (commands whose interface names other files,
    e.g. ``drift.json``/``drift.html``, pass those names). Artifacts (safetensors + JSON) are saved
    under ``out/artifacts`` by the step that computes them, where they also serve as caches.

    Both files are replaced atomically; the JSON is plain ASCII (``default=str`` for paths and
    other values that are not JSON), so a lone surrogate from an API answer cannot fail the write.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / summary_name, json.dumps(summary, indent=2, default=str))
    if report is not None:
        report.write(out / report_name)
    return summary


def _circuitsvis_bundle() -> str:
    """The circuitsvis browser bundle shipped in the package (defines the global ``CircuitsVis``)."""
    import circuitsvis

    bundle = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    return bundle.read_text(encoding="utf-8").replace("</script>", "<\\/script>")
