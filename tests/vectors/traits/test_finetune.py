"""Fine-tuning under persona vectors (issue 14): training-time hooks, resume, the level-0 shift,
persona_vectors-format data. Tiny sizes on the shipped model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from workbench.artifacts import LayerVectors
from workbench.chat import format_conversation, messages
from workbench.errors import InputFormatError, LayerError
from workbench.extract import extract_means
from workbench.hooks import AddVector, TokenCapture, apply, decoder_layers
from workbench.models import hf_twin
from workbench.train import LoraConfig, TrainRun, _batch, lora_model, response_loss

from vectors.traits.data import load_trait
from vectors.traits.finetune import FinetuneConfig, FinetuneRun, fisher_interval, is_monotone
from vectors.traits.monitor import load_screen_data

TINY = LoraConfig(rank=4, alpha=8, first_layer=24, steps=4, batch_size=2, max_tokens=40, learning_rate=1e-3,
                  checkpoint_every=2)


def _conversations(n=4):
    return [messages(None, f"Tell me about boats, number {i}.", "Arr matey, the sea be wide " * (1 + i % 3))
            for i in range(n)]


@pytest.fixture(scope="module")
def pirate_vector(model):
    """A real pirate direction: mean response activation of trait minus normal held-out answers."""
    trait = load_trait("pirate")
    pos = [format_conversation(model.tokenizer, messages(None, e.question, e.positive)) for e in trait.heldout]
    neg = [format_conversation(model.tokenizer, messages(None, e.question, e.negative)) for e in trait.heldout]
    layers = list(range(model.cfg.n_layers))
    diff = extract_means(model, pos, layers, progress=False).mean(0) - extract_means(model, neg, layers, progress=False).mean(0)
    return LayerVectors(diff, {"trait": "pirate"})


def test_training_steer_changes_gradients_and_is_removed(model, pirate_vector):
    twin = hf_twin(model)
    peft_model = lora_model(twin, TINY)
    chats = [format_conversation(model.tokenizer, c) for c in _conversations(2)]
    tokens, mask = _batch(chats, [0, 1], 40, 0)

    def grads(interventions):
        peft_model.zero_grad()
        response_loss(peft_model, tokens, mask, interventions).backward()
        return torch.cat([p.grad.flatten() for p in peft_model.parameters() if p.requires_grad])

    plain = grads(())
    steered = grads([AddVector({20: pirate_vector.at(20)}, 4.0)])
    assert plain.abs().sum() > 0
    assert not torch.allclose(plain, steered, atol=1e-6)
    layers = decoder_layers(peft_model.get_base_model())
    assert all(not layer._forward_hooks for layer in layers)  # removed after the pass
    assert torch.allclose(grads(()), plain, atol=1e-6)  # and the plain gradient is back
    assert all(p.grad is None for p in twin.parameters())  # training ran on a copy


def test_resumed_run_equals_uninterrupted(model, tmp_path):
    base_weight = model.W_Q[25].clone()
    conversations = _conversations()
    whole, result = TrainRun(model, conversations, tmp_path / "whole", TINY).run()
    TrainRun(model, conversations, tmp_path / "killed", TINY).run(stop_after=2)
    resumed, again = TrainRun(model, conversations, tmp_path / "killed", TINY).run()
    assert again.resumed_from == 2 and again.losses == result.losses
    for (name, a), b in zip(whole.named_parameters(), resumed.parameters()):
        if a.requires_grad:
            assert torch.equal(a, b), name
    assert result.losses[-1] < result.losses[0]  # it learns
    assert torch.equal(model.W_Q[25], base_weight)  # the base model is untouched
    provenance = json.loads((tmp_path / "whole" / "provenance.json").read_text())
    assert provenance["base_model"] == model.cfg.model_name and provenance["data_hash"]


def test_persona_vectors_jsonl_imports_and_trains(model, tmp_path):
    path = tmp_path / "misaligned_2.jsonl"
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in _conversations(3)))
    conversations = load_screen_data(path)
    _, result = TrainRun(model, conversations, tmp_path / "ft", TINY).run()
    assert result.steps == TINY.steps and all(torch.isfinite(torch.tensor(result.losses)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"conversation": []}) + "\n")
    with pytest.raises(InputFormatError, match="bad.jsonl:1.*messages"):
        load_screen_data(bad)


def test_caft_ablates_at_every_requested_layer_and_bad_layers_fail_early(model, pirate_vector, tmp_path):
    """CAFT over several layers removes the trait direction's component at each of them (one layer
    alone leaves the layers above free to rebuild it); a layer the model lacks fails at construction,
    before any training; --ablate-layers without --ablate is refused."""
    trait = load_trait("pirate")
    assert FinetuneConfig(ablate=True, layer=15).caft_layers == (15,)
    config = FinetuneConfig(ablate=True, ablate_layers=(26, 24, 25), layer=26)
    assert config.caft_layers == (24, 25, 26)
    caft = FinetuneRun(model, trait, pirate_vector, tmp_path, config, progress=False).caft_intervention()
    chat = format_conversation(model.tokenizer, messages(None, "Who are you?", "Arr, a pirate I be."))
    capture = TokenCapture((24, 25, 26))
    with torch.inference_mode(), apply(model, [capture]):
        model(torch.tensor([chat.ids]))
    before = {layer: (capture.values[layer][0] @ pirate_vector.unit(layer)).abs().max() for layer in (24, 25, 26)}
    with torch.inference_mode(), apply(model, [caft, capture]):
        model(torch.tensor([chat.ids]))
    for layer in (24, 25, 26):
        after = (capture.values[layer][0] @ pirate_vector.unit(layer)).abs().max()
        assert before[layer] > 0.1 and after < 1e-3, (layer, float(before[layer]), float(after))
    with pytest.raises(LayerError, match="--ablate-layers 40 is out of range: this model has layers 0..29"):
        FinetuneRun(model, trait, pirate_vector, tmp_path, FinetuneConfig(ablate=True, ablate_layers=(12, 40)))
    with pytest.raises(InputFormatError, match="needs --ablate"):
        FinetuneConfig(ablate_layers=(12,))


def test_levels_0_shift_is_zero_within_noise(model, pirate_vector, tmp_path):
    """Training on 0% trait data leaves the shift along the trait vector inside the spread of the
    same shift along random unit directions."""
    config = FinetuneConfig(levels=(0,), layer=26, n_train_questions=3, n_eval_questions=3, n_examples=3,
                            inference_coefs=(), n_random=20, lora=TINY)
    run = FinetuneRun(model, load_trait("pirate"), pirate_vector, tmp_path, config, progress=False)
    study = run.run()
    base, level0 = study.evals
    assert base.shift_prompt_last[26] == pytest.approx(0.0, abs=1e-5)
    assert study.sets[0].level == 0 and study.sets[0].delta_p is not None
    # A random unit direction's projection of the shift has standard deviation |shift| / sqrt(d_model).
    noise = level0.shift_norm / model.cfg.d_model ** 0.5
    print(f"level-0 shift along the pirate vector {level0.shift_prompt_last[26]:.4f}, random sd {noise:.4f}")
    assert level0.shift_norm > 0  # the weights did move
    assert abs(level0.shift_prompt_last[26]) < 3 * noise
    summary = study.to_summary()
    assert summary["finetunes"][1]["train"]["steps"] == TINY.steps
    # The paired trait difference: zero for the base against itself, finite for the fine-tune; the
    # generation-based measure is finite; one level cannot be called monotone.
    assert base.trait_vs_base == 0.0 and math.isfinite(level0.trait_vs_base_stderr)
    assert math.isfinite(base.answer_persona_ratio) and math.isfinite(level0.answer_persona_ratio)
    assert [row["level"] for row in summary["by_level"]["rows"]] == [0]
    assert summary["by_level"]["trait_metric_monotone"] is None
    json.dumps(summary)


def test_is_monotone():
    assert is_monotone([-0.1, 0.0, 0.0, 0.3]) is True
    assert is_monotone([0.2, 0.1]) is False
    assert is_monotone([0.1]) is None and is_monotone([0.1, float("nan")]) is None


def test_fisher_interval():
    low, high = fisher_interval(0.5, 10)
    assert low < 0.5 < high and -1 < low and high < 1
    assert fisher_interval(0.5, 3) is None
