"""Generation on the Hugging Face twin equals generation on the hooked model, intervention by intervention.

The twin (``workbench.models.hf_twin``) shares the hooked model's weights and runs the same loop with
Hugging Face attention and ``DynamicCache``; the interventions are the same values, installed as forward
hooks on its decoder layers. Greedy outputs must agree token for token with the TransformerLens engine.
"""

import pytest
import torch

from gemma_fixture import gemma2_tokenizer, tiny_gemma2_config, tiny_gemma2_hf
from sae_analysis.saes import load_sae
from workbench.chat import format_prompt, messages
from workbench.generate import Sampling, _engine, generate_tokens
from workbench.hooks import AblateDirection, AddVector, CapProjection, SpliceSAE, apply, decoder_layers
from workbench.models import hf_twin, hooked_from_hf

STEER, CAP, SAE_LAYER = 12, (10, 11, 12), 18
GREEDY = Sampling(max_new_tokens=16)


@pytest.fixture(scope="module")
def prompts(model):
    questions = [("You are a pirate.", "Who are you?"), (None, "What is 2+2? Explain briefly."),
                 ("You are a bard who answers in verse.", "Tell me about the sea and the sky, please.")]
    return [format_prompt(model.tokenizer, messages(s, q)) for s, q in questions]  # unequal lengths: left padding


@pytest.fixture(scope="module")
def direction(model):
    return torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(3))


def _variants(direction, sae) -> dict:
    caps = {layer: direction for layer in CAP}
    return {
        "plain": [],
        "steer_all": [AddVector({STEER: direction}, coefficient=2.0, where="all")],
        "steer_prompt": [AddVector({STEER: direction}, coefficient=3.0, where="prompt")],
        "steer_response": [AddVector({STEER: direction}, coefficient=2.0, where="response")],
        "cap_floor": [CapProjection(caps, {layer: 3.0 for layer in CAP}, mode="floor")],
        "cap_ceiling": [CapProjection(caps, {layer: -1.0 for layer in CAP}, mode="ceiling", where="response")],
        "ablate": [AblateDirection({STEER: direction})],
        "sae_splice": [SpliceSAE(sae, SAE_LAYER, {0: 8.0, 5: 8.0})],
    }


def test_shipped_model_has_a_twin_sharing_its_weights(model):
    twin = hf_twin(model)
    assert twin is not None
    ours = {p.untyped_storage().data_ptr() for p in model.parameters()}
    shared = [p for p in twin.parameters() if p.untyped_storage().data_ptr() in ours]
    assert sum(p.numel() for p in shared) / sum(p.numel() for p in twin.parameters()) > 0.99
    assert "_workbench_hf_twin" not in " ".join(model.state_dict())
    assert _engine(model, "auto")[0] is twin and _engine(model, "hooked")[0] is model


def test_greedy_is_token_identical_to_the_hooked_engine_under_every_intervention(model, prompts, direction):
    plain = None
    for name, interventions in _variants(direction, load_sae("shipped")).items():
        hooked = generate_tokens(model, prompts, GREEDY, interventions, progress=False, engine="hooked")
        hf = generate_tokens(model, prompts, GREEDY, interventions, progress=False, engine="hf")
        assert hf == hooked, name
        plain = plain or hf
        assert name == "plain" or hf != plain, f"{name} changed nothing: the test could not fail"


def test_cached_equals_uncached_and_sampling_is_seeded_alike(model, prompts, direction):
    interventions = [AddVector({STEER: direction}, coefficient=1.5, where="response"),
                     CapProjection({8: direction}, {8: 0.0}, mode="ceiling")]
    cached = generate_tokens(model, prompts, GREEDY, interventions, use_cache=True, progress=False, engine="hf")
    uncached = generate_tokens(model, prompts, GREEDY, interventions, use_cache=False, progress=False, engine="hf")
    assert cached == uncached
    sampled = Sampling(max_new_tokens=16, temperature=0.7, top_p=0.9, seed=5)
    hf = generate_tokens(model, prompts, sampled, interventions, progress=False, engine="hf")
    assert hf == generate_tokens(model, prompts, sampled, interventions, progress=False, engine="hooked")
    assert hf != generate_tokens(model, prompts, Sampling(16, 0.7, 0.9, seed=6), interventions, progress=False)


def test_hf_hooks_removed_on_exit_and_after_an_exception(model, prompts, direction):
    layers = decoder_layers(hf_twin(model))

    def broken(layer, resid, positions):
        raise RuntimeError("boom")

    broken.layers = (STEER,)
    with pytest.raises(RuntimeError, match="boom"):
        generate_tokens(model, prompts[:1], GREEDY, [broken], progress=False, engine="hf")
    with apply(hf_twin(model), [AddVector({STEER: direction})]):
        assert len(layers[STEER]._forward_hooks) == 1
    assert all(not layer._forward_hooks for layer in layers)


def test_gemma2_twin_matches_the_hooked_engine():
    """Soft-capping, sliding window (8 < prompt length) and the system merge, on the tiny random Gemma 2."""
    tokenizer = gemma2_tokenizer()
    model = hooked_from_hf(tiny_gemma2_hf(tokenizer), tokenizer, cfg=tiny_gemma2_config(len(tokenizer)))
    assert hf_twin(model) is not None
    prompts = [format_prompt(tokenizer, messages("You are a pirate.", "Hello there, how are you today?")),
               format_prompt(tokenizer, messages(None, "Arr"))]
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    assert len(prompts[0]) > 8 + len(prompts[1])  # past the window of 8, and padded
    sampling = Sampling(max_new_tokens=12, stop_at_eos=False)
    outputs = []
    for interventions in ([], [AddVector({1: direction}, coefficient=4.0, where="response")],
                          [CapProjection({2: direction}, {2: 0.5}, mode="ceiling")]):
        hooked = generate_tokens(model, prompts, sampling, interventions, progress=False, engine="hooked")
        assert generate_tokens(model, prompts, sampling, interventions, progress=False, engine="hf") == hooked
        uncached = generate_tokens(model, prompts, sampling, interventions, use_cache=False, progress=False)
        assert uncached == hooked
        outputs.append(hooked)
    assert outputs[0] != outputs[1] and outputs[0] != outputs[2]


def test_nucleus_equals_the_full_sort_on_peaked_and_flat_distributions():
    from workbench.generate import _nucleus

    generator = torch.Generator().manual_seed(0)
    for scale in (8.0, 3.0, 0.01):  # the last is flat: the nucleus reaches past the top-k candidates
        probs = torch.softmax(torch.randn(4, 5000, generator=generator) * scale, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        sorted_probs[sorted_probs.cumsum(dim=-1) - sorted_probs > 0.9] = 0
        expected = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        assert torch.equal(_nucleus(probs, 0.9), expected), scale
