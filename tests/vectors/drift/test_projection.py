import json
from html.parser import HTMLParser

import pytest
import torch

from browser import console_errors, open_page
from drift_helpers import quick_axis
from workbench.chat import format_conversation
from workbench.cli import main
from workbench.errors import LayerError
from workbench.hooks import TokenCapture, apply
from vectors.drift.measure import measure_drift
from vectors.drift.report import drift_report
from workbench.report import write_run
from vectors.drift.projection import in_band_share, project_chat, response_quantiles
from vectors.drift.transcripts import Transcript

HOSTILE = "<script>alert(1)</script>"
CONVERSATION = (
    {"role": "user", "content": "Hello, who are you?"},
    {"role": "assistant", "content": "I am a helpful assistant. How can I help?"},
    {"role": "user", "content": f"Say {HOSTILE} and become the ancient oracle."},
    {"role": "assistant", "content": f"Mortal, I whisper {HOSTILE} from the eternal mists."},
)


@pytest.fixture(scope="module")
def chat(model):
    return format_conversation(model.tokenizer, list(CONVERSATION))


def _full_pass(model, chat, axis, layers):
    capture = TokenCapture(tuple(layers))
    with torch.inference_mode(), apply(model, [capture]):
        model(torch.tensor([chat.ids]), stop_at_layer=max(layers) + 1)
    return torch.stack([capture.values[layer][0] @ axis.unit(layer) for layer in layers])


def test_chunked_projection_is_exact_and_windows_say_what_they_did(model, chat):
    axis = quick_axis(model)
    full = _full_pass(model, chat, axis, [6, 18])
    chunked = project_chat(model, chat, axis, [6, 18], chunk_size=16)
    assert torch.allclose(chunked.values, full, atol=1e-3)
    assert chunked.method.startswith("exact")
    windowed = project_chat(model, chat, axis, [18], window=48, overlap=16)
    assert windowed.method.startswith("sliding window") and "overlapping by 16" in windowed.method
    assert torch.allclose(windowed.at(18)[:48], full[1, :48], atol=1e-3)  # first window: exact
    assert torch.isfinite(windowed.at(18)).all() and not torch.allclose(windowed.at(18), full[1], atol=1e-3)
    means = chunked.turn_means(18)
    assert [round(m, 4) for m in means] == [round(float(full[1, s:e].mean()), 4) for s, e in chat.assistant_spans]
    with pytest.raises(LayerError, match="layer 7 was not projected"):
        chunked.at(7)


def test_band_quantiles_and_in_band_share(model, chat):
    projection = project_chat(model, chat, quick_axis(model), [18])
    low, high = response_quantiles([projection], 18, [0.25, 0.75])
    pooled = projection.response_values(18)
    assert low < high and ((pooled >= low) & (pooled <= high)).float().mean().item() == pytest.approx(0.5, abs=0.1)
    assert in_band_share([1.0, 2.0, 5.0], (0.5, 2.0)) == pytest.approx(2 / 3)


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.text, self._in = 0, [], False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts, self._in = self.scripts + 1, True

    def handle_endtag(self, tag):
        self._in = self._in and tag != "script"

    def handle_data(self, data):
        if not self._in:
            self.text.append(data)


def test_drift_html_and_json(model, tmp_path):
    transcript = Transcript(CONVERSATION, {"persona": HOSTILE}, "hostile.json")
    result = measure_drift(model, transcript, quick_axis(model), 18, (-1.0, 1.0))
    data = write_run(tmp_path, result.to_summary(), drift_report(result), summary_name="drift.json",
                     report_name="drift.html")
    saved = json.loads((tmp_path / "drift.json").read_text())
    assert saved["turn_means"] == data["turn_means"] and len(saved["turn_means"]) == 2
    assert len(saved["values"]) == len(saved["tokens"]) and saved["band"] == [-1.0, 1.0]
    assert [len(t["values"]) for t in saved["turns"]] == [e - s for s, e in (t["span"] for t in saved["turns"])]
    page = (tmp_path / "drift.html").read_text()
    parser = _Text()
    parser.feed(page)
    # plotly + circuitsvis libraries, 2 figures, 2 token views: no script from the transcript
    assert parser.scripts == 6
    assert page.count("var CircuitsVis=") == 1 and "cdn" not in page.split("var CircuitsVis=")[0][-2000:].lower()
    assert HOSTILE not in page.replace("\\u003cscript\\u003e", "")
    with open_page(tmp_path / "drift.html", settle_s=2.0) as driver:
        shown = driver.find_element("tag name", "body").text
        assert not console_errors(driver)
    assert HOSTILE in shown.replace(" ", "") and "Assistant turn 2" in shown


def test_drift_cli_rejects_bad_transcript_naming_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "m", "conversation": [{"role": "user"}]}))
    assert main(["drift", str(bad), "--axis", str(tmp_path / "none.safetensors"), "--out", str(tmp_path)]) == 2
    assert "bad.json: field 'conversation': message 0 field 'content'" in capsys.readouterr().err
