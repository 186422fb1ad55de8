import pytest
import torch

from workbench.chat import format_conversation, format_prompt, messages
from workbench.extract import extract_means
from workbench.generate import Sampling, generate_tokens
from workbench.hooks import AblateDirection, AddVector, CapProjection, Positions, TokenCapture, apply

LAYER = 12


@pytest.fixture(scope="module")
def chat(model):
    return format_conversation(model.tokenizer, messages("You are a bard.", "Sing of the sea.", "O wide and rolling sea!"))


@pytest.fixture(scope="module")
def direction(model):
    return torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))


def _logits(model, chat, interventions=(), response_mask=None):
    with torch.inference_mode(), apply(model, interventions, Positions(response_mask=response_mask)):
        return model(torch.tensor([chat.ids]))


def _no_hooks_left(model):
    return all(not hp.fwd_hooks for hp in model.hook_dict.values())


def test_zero_coefficient_is_identity_and_nonzero_changes(model, chat, direction):
    clean = _logits(model, chat)
    zero = _logits(model, chat, [AddVector({LAYER: direction}, coefficient=0.0)])
    steered = _logits(model, chat, [AddVector({LAYER: direction}, coefficient=4.0)])
    assert torch.equal(clean, zero)
    assert (steered - clean).abs().max() > 1e-2
    assert _no_hooks_left(model)


def test_hooks_removed_after_exception(model, chat, direction):
    with pytest.raises(RuntimeError, match="boom"):
        with apply(model, [AddVector({LAYER: direction}, coefficient=3.0)]):
            raise RuntimeError("boom")
    assert _no_hooks_left(model)
    assert torch.equal(_logits(model, chat), _logits(model, chat, []))


def test_response_positions_only(model, chat, direction):
    mask = chat.response_mask()[None]
    capture = TokenCapture((LAYER,))
    with torch.inference_mode(), apply(model, [AddVector({LAYER: direction}, 2.0, where="response"), capture], Positions(mask)):
        model(torch.tensor([chat.ids]))
    steered = capture.values[LAYER][0]
    with torch.inference_mode(), apply(model, [capture]):
        model(torch.tensor([chat.ids]))
    delta = steered - capture.values[LAYER][0]
    assert torch.allclose(delta[mask[0]], (2.0 * direction).expand(int(mask.sum()), -1), atol=1e-4)
    assert delta[~mask[0]].abs().max() == 0


def test_cap_and_ablate_fix_the_projection(model, chat, direction):
    unit = direction / direction.norm()
    capture = TokenCapture((LAYER,))
    with torch.inference_mode(), apply(model, [capture]):
        model(torch.tensor([chat.ids]))
    projection = capture.values[LAYER][0] @ unit
    tau = float(projection.median())
    for cap, check in [
        (CapProjection({LAYER: direction}, {LAYER: tau}, mode="floor"), lambda p: p.min() >= tau - 1e-3),
        (CapProjection({LAYER: direction}, {LAYER: tau}, mode="ceiling"), lambda p: p.max() <= tau + 1e-3),
        (AblateDirection({LAYER: direction}), lambda p: p.abs().max() < 1e-3),
    ]:
        with torch.inference_mode(), apply(model, [cap, capture]):
            model(torch.tensor([chat.ids]))
        assert check(capture.values[LAYER][0] @ unit), cap


def test_capture_equals_hf_hidden_states(model, smollm2_hf, chat):
    hf_model, _ = smollm2_hf
    # HF applies the final norm to its last hidden_states entry, so the last layer is left out.
    means = extract_means(model, [chat], [0, LAYER, 28], progress=False)[0]
    with torch.inference_mode():
        hidden = hf_model(torch.tensor([chat.ids]), output_hidden_states=True).hidden_states
    mask = chat.response_mask()
    for row, layer in enumerate([0, LAYER, 28]):
        expected = hidden[layer + 1][0][mask].mean(0)
        assert torch.allclose(means[row], expected, atol=1e-4, rtol=1e-4), layer


def test_cached_generation_equals_uncached_under_intervention(model, direction):
    prompts = [format_prompt(model.tokenizer, messages(None, q)) for q in ["Name a color.", "What is 2+2? Explain briefly."]]
    interventions = [AddVector({LAYER: direction}, coefficient=1.5, where="response"),
                     CapProjection({8: direction}, {8: 0.0}, mode="ceiling")]
    sampling = Sampling(max_new_tokens=12)
    cached = generate_tokens(model, prompts, sampling, interventions, use_cache=True, progress=False)
    uncached = generate_tokens(model, prompts, sampling, interventions, use_cache=False, progress=False)
    plain = generate_tokens(model, prompts, sampling, (), use_cache=True, progress=False)
    assert cached == uncached
    assert cached != plain
    assert _no_hooks_left(model)
