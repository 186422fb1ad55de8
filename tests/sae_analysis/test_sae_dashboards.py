"""Feature and vector dashboards on the shipped model and SAE: logit effects are W_dec · W_U,
quantile contexts are sorted and carry the SAE's own activations, the page opens offline in
headless Chromium, and the same code runs on a 131072-feature dictionary."""

import pytest
import torch

from sae_analysis.contexts import token_activations
from sae_analysis.dashboard_report import dashboard_report
from sae_analysis.dashboards import build_dashboards, logit_effects
from sae_analysis.decompose import FeatureHit
from sae_analysis.pipeline import corpus_rows
from sae_analysis.saes import load_sae, resolve

LAYER = 18


@pytest.fixture(scope="module")
def setup(model):
    spec = resolve("shipped")
    sae = load_sae(spec)
    rows = corpus_rows(model, limit=16)
    acts = token_activations(model, rows, LAYER)
    W = sae.W_dec.detach()
    vector = W[7] / W[7].norm() - W[300] / W[300].norm()
    features = {7: ("decoder cos +0.7",), 300: ("decoder cos -0.7",), 42: ("attribution",)}
    dashboards = build_dashboards(model, sae, spec, vector, LAYER, "planted <vector>", rows, acts, features,
                                  [FeatureHit(7, 0.7), FeatureHit(300, -0.7)])
    return sae, rows, acts, vector, dashboards


def test_logit_effects_are_the_decoder_row_times_the_unembedding(model, setup):
    sae, _, _, vector, dashboards = setup
    for f, d in dashboards.features.items():
        direct = sae.W_dec.detach()[f].float() @ model.W_U.detach().float()
        top, bottom = torch.topk(direct, 10), torch.topk(-direct, 10)
        assert [t.value for t in d.logits.top] == pytest.approx(top.values.tolist(), abs=1e-4)
        assert [t.value for t in d.logits.bottom] == pytest.approx((-bottom.values).tolist(), abs=1e-4)
        assert [t.token for t in d.logits.top] == [model.tokenizer.decode([int(i)]) for i in top.indices]
        assert sum(d.logits.histogram.counts) == model.cfg.d_vocab
    direct = vector.float() @ model.W_U.detach().float()
    assert dashboards.vector.logits.top[0].value == pytest.approx(float(direct.max()), abs=1e-4)
    with pytest.raises(Exception, match="do not fit W_U"):
        logit_effects(torch.zeros(1, 5), model.W_U.detach(), model.tokenizer)


def test_quantile_contexts_are_sorted_and_match_a_direct_encode(setup):
    sae, rows, acts, _, dashboards = setup
    fired = [d for d in dashboards.features.values() if d.groups]
    assert fired, "no listed feature fires on 16 corpus conversations"
    for d in fired:
        with torch.no_grad():
            codes = [sae.encode(a.float())[:, d.feature] for a in acts]
        nonzero = torch.cat([c[1:] for c in codes])
        nonzero = nonzero[nonzero > 0]
        assert d.density == pytest.approx(len(nonzero) / sum(len(a) - 1 for a in acts))
        assert sum(d.activation_histogram.counts) == len(nonzero)
        top = d.groups[0]
        assert top.label == "top" and top.contexts[0].value == pytest.approx(float(nonzero.max()), rel=1e-4)
        ordered = [c.value for g in d.groups for c in g.contexts]
        assert ordered == sorted(ordered, reverse=True)  # within and across groups, highest first
        for g in d.groups:
            for c in g.contexts:
                assert c.value == pytest.approx(float(codes[c.row][c.position]), rel=1e-4, abs=1e-5)
                assert c.value in c.values and len(c.tokens) == len(c.values)
        assert len(d.neighbours) == 5 and d.feature not in {h.index for h in d.neighbours}
    v = dashboards.vector
    assert v.groups[0].label == "top" and v.groups[-1].label == "most negative"
    assert v.groups[0].contexts[0].value > 0 > v.groups[-1].contexts[-1].value
    assert [h.index for h, _ in v.features] == [7, 300] and all(line.startswith("+ ") for _, line in v.features)


def test_dashboard_page_renders_offline_in_chromium(setup, tmp_path):
    from browser import console_errors, open_page

    _, _, _, _, dashboards = setup
    path = dashboard_report(dashboards).write(tmp_path / "dashboards.html")
    page_html = path.read_text()
    assert page_html.count("var CircuitsVis=") == 1 and "<vector>" not in page_html  # escaped
    assert 'id="feature-300"' in page_html
    with open_page(path, settle_s=3.0) as page:
        assert not console_errors(page), console_errors(page)
        charts = page.find_elements("css selector", ".plotly-graph-div")
        assert len(charts) == 1 + len(dashboards.features)
        assert all(c.find_elements("css selector", ".main-svg") for c in charts)
        views = page.find_elements("css selector", ".cv-view")
        assert views and all(v.find_elements("css selector", ".colored-tokens span") for v in views)


def test_dashboards_run_on_a_131072_feature_dictionary(model):
    """The GemmaScope 131k width (with the shipped model's d_model for corpus activations): the
    bench times 20 features; here 2 features on 3 conversations keep the test small."""
    from workbench.benchmark.dashboards import measure_dashboards

    result = measure_dashboards(model, n_features=2, n_rows=3, progress=False)
    assert result["d_sae"] == 131072 and result["n_features"] == 2 and result["seconds"] > 0
