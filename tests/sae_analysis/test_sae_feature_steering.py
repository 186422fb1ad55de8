"""Feature-level steering on the shipped model and SAE: the splice edits only what it clamps, top-k
directions have the vector's norm, and the comparison runs end to end with its control rows."""

import math

import pytest
import torch
from openai_server import FakeOpenAI

from sae_analysis.feature_steering import (
    Baselines, ComparisonConfig, compare_steering, random_directions, reference_activations, summarize, topk_direction,
)
from sae_analysis.saes import load_sae
from workbench.api import ApiConfig, ChatClient
from workbench.chat import format_conversation, messages
from workbench.generate import Sampling
from workbench.hooks import SpliceSAE, TokenCapture, apply
from workbench.metrics import TraitExample

LAYER = 18


@pytest.fixture(scope="module")
def sae():
    return load_sae("shipped")


@pytest.fixture(scope="module")
def tokens(model):
    chat = format_conversation(model.tokenizer, messages("You are a pirate.", "Who are you?", "Arr, I be a pirate!"))
    return torch.tensor([chat.ids])


def test_splice_without_edit_is_exact_identity(model, sae, tokens):
    clean = model(tokens)
    with apply(model, [SpliceSAE(sae, LAYER, {})]):
        assert torch.equal(model(tokens), clean)


def test_splice_adds_exactly_the_clamped_features_decoder_rows(model, sae, tokens):
    """Clamping a feature that is silent on this text to m adds m · W_dec[f] and nothing else:
    the reconstruction error is kept."""
    capture = TokenCapture((LAYER,))
    with torch.inference_mode(), apply(model, [capture]):
        model(tokens, stop_at_layer=LAYER + 1)
    clean = capture.values[LAYER]
    silent = int((sae.encode(clean[0]) > 0).sum(0).eq(0).nonzero()[0])
    after = TokenCapture((LAYER,))
    with torch.inference_mode(), apply(model, [SpliceSAE(sae, LAYER, {silent: 5.0}), after]):
        model(tokens, stop_at_layer=LAYER + 1)
    expected = clean + 5.0 * sae.W_dec[silent].detach()
    assert torch.allclose(after.values[LAYER], expected, atol=1e-4)


def test_topk_direction_has_the_vectors_norm_and_follows_its_features(sae):
    W = sae.W_dec.detach()
    v = 2.0 * W[7] / W[7].norm() * 10 + 0.1 * torch.randn(W.shape[1])
    direction, features = topk_direction(v, W, 1)
    assert features == [7]
    assert direction.norm() == pytest.approx(float(v.norm()), rel=1e-5)
    assert torch.nn.functional.cosine_similarity(direction, W[7], dim=0) > 0.999
    five, features5 = topk_direction(v, W, 5)
    assert len(features5) == 5 and five.norm() == pytest.approx(float(v.norm()), rel=1e-5)


def test_random_directions_have_matched_norm():
    rs = random_directions(576, 3, 4.0, seed=1)
    assert len(rs) == 3 and all(abs(float(r.norm()) - 4.0) < 1e-4 for r in rs)
    assert abs(float(torch.nn.functional.cosine_similarity(rs[0], rs[1], dim=0))) < 0.3


def test_comparison_runs_with_control_rows_and_names_a_winner(model, sae, tokens):
    W = sae.W_dec.detach()
    vector = W[3] / W[3].norm() + W[11] / W[11].norm()
    capture = TokenCapture((LAYER,))
    with torch.inference_mode(), apply(model, [capture]):
        model(tokens, stop_at_layer=LAYER + 1)
    reference = reference_activations(sae, capture.values[LAYER][0, 1:])
    examples = [TraitExample("Who are you?", "Arr, I be a pirate captain!", "I am a helpful assistant."),
                TraitExample("How are you?", "Shiver me timbers, fine!", "I am doing well, thank you.")]
    config = ComparisonConfig(ks=(1,), coefficients=(0.2,), clamp_multiples=(2.0,), n_random=1,
                              sampling=Sampling(max_new_tokens=4), output_score_ks=(1,), n_candidates=3)
    with FakeOpenAI(answer=lambda r: "x", logprobs=lambda r: {"70": math.log(0.5), "90": math.log(0.5)}) as server:
        judge = ChatClient(ApiConfig(server.base_url, "judge", backoff_base_s=0.001, requests_per_second=1000))
        baselines = Baselines("You are a pirate. Always talk like a pirate.",
                              (TraitExample("Where is the ship?", "Arr, she be in port, matey!", "The ship is in the port."),),
                              judge, "pirate", "Talks like a pirate.")
        rows, ranking = compare_steering(model, vector, LAYER, sae, examples, ["Who are you?", "How are you?"], 10.0,
                                         reference, config, progress=False, baselines=baselines)
        judged = [r["body"]["messages"][0]["content"] for r in server.requests]
    assert len(judged) == 2 * len(rows) and all("pirate" in text for text in judged)
    assert all(r["judge_trait"] == pytest.approx(80) for r in rows)
    assert [r["method"] for r in rows] == ["none", "whole", "top1", "outscore1", "prompt", "prompt+whole", "random0",
                                           "splice1"]
    assert all(r["ci95"] >= 0 for r in rows)
    assert rows[1]["trait_metric"] != rows[0]["trait_metric"]  # a push of 2 × norm moves likelihoods
    # the output-score ranking: 3 candidates (the top |cos| features, 3 and 11 among them), best raise first
    assert len(ranking) == 3 and {3, 11} <= {f for f, _, _ in ranking}
    assert [r for _, _, r in ranking] == sorted((r for _, _, r in ranking), reverse=True)
    assert rows[3]["features"] == [ranking[0][0]]
    prompt = rows[4]
    assert "coefficient" not in prompt and prompt["trait_metric"] > rows[0]["trait_metric"]  # the instruction works
    for r in rows:  # behavioural score in [0, 1] with an interval over the 2 questions
        assert 0 <= r["behaviour"] <= 1 and r["behaviour_ci95"] >= 0 and 0 <= r["concept"] <= 1
    summary = summarize(rows)
    entry = summary["by_coefficient"]["0.2"]
    assert set(entry["shifts"]) == {"whole", "top1", "outscore1", "prompt+whole", "random0"} and "beats_random" in entry
    assert entry["best_by_behaviour"] in {"whole", "top1", "outscore1", "prompt+whole"}
    assert set(entry["behaviour_beats_random"]) == {"mean", "interval_separated"} and "behaviour_beats_prompting" in entry
    assert summary["prompting"]["trait_shift"] == prompt["trait_metric"] - rows[0]["trait_metric"]
    assert "splice1@2.0" in summary["splice_shifts"]

def test_shipped_sae_meets_its_card_on_held_out_conversations(model, sae):
    """The card's held-out explained variance is reproduced (within 0.05) and mean L0 ≤ 64, on
    conversations about questions never trained on; the card itself claims the issue's targets
    (EV ≥ 0.8, L0 ≤ 64)."""
    import json

    from sae_analysis.contexts import token_activations
    from sae_analysis.pipeline import corpus_rows
    from sae_analysis.saes import SHIPPED_DIR

    card = json.loads((SHIPPED_DIR / "metrics.json").read_text())
    assert card["explained_variance_heldout"] >= 0.8 and card["mean_l0_heldout"] <= 64
    held = set(card["heldout_questions"])
    rows = [r for r in corpus_rows(model, limit=1200) if r["question"] in held][:24]
    acts = torch.cat([a[1:] for a in token_activations(model, rows, LAYER)])
    with torch.no_grad():
        codes = sae.encode(acts)
        recon = sae.decode(codes)
    explained = 1 - (acts - recon).pow(2).sum() / (acts - acts.mean(0)).pow(2).sum()
    assert explained >= card["explained_variance_heldout"] - 0.05
    assert (codes > 0).sum(-1).float().mean() <= 64
