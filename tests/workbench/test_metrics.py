import math

import pytest
import torch

from workbench.chat import format_conversation, messages
from workbench.errors import InputFormatError
from workbench.generate import Sampling
from workbench.hooks import AddVector
from workbench.metrics import (
    TraitExample,
    evaluate_steering,
    perplexity,
    repetition,
    response_loglik,
    trait_metric,
)

PIRATE = [
    TraitExample("How are you today?", "Arr, I be doin' fine, matey! The seas be calm.", "I am doing well, thank you for asking."),
    TraitExample("What is the capital of France?", "Arr, 'tis Paris, ye landlubber!", "The capital of France is Paris."),
]


def test_loglik_matches_a_manual_forward_and_is_batch_invariant(model):
    convs = [messages(None, "Hi?", "Hello there, how can I help?"), messages("Be brief.", "2+2?", "Four.")]
    batched = response_loglik(model, convs, batch_size=2, progress=False)
    chat = format_conversation(model.tokenizer, convs[0])
    start, end = chat.assistant_spans[0]
    with torch.inference_mode():
        logp = model(torch.tensor([chat.ids])).log_softmax(-1)[0]
    manual = sum(float(logp[t - 1, chat.ids[t]]) for t in range(start, end))
    assert batched.n_tokens[0] == end - start
    assert batched.total[0].item() == pytest.approx(manual, abs=1e-3)
    single = response_loglik(model, convs[1:], batch_size=1, progress=False)
    assert batched.total[1].item() == pytest.approx(single.total[0].item(), abs=1e-3)


def test_trait_metric_sees_a_persona_prompt_and_a_steer(model):
    plain = trait_metric(model, PIRATE, progress=False)
    pirate = trait_metric(model, PIRATE, system="You are a pirate. Speak like a pirate.", progress=False)
    assert pirate.value > plain.value + 0.1
    zero = trait_metric(model, PIRATE, [AddVector({10: torch.ones(model.cfg.d_model)}, 0.0)], progress=False)
    assert zero.value == pytest.approx(plain.value, abs=1e-5)
    pushed = trait_metric(model, PIRATE, [AddVector({10: torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))}, 5.0)], progress=False)
    assert abs(pushed.value - plain.value) > 1e-3
    assert len(plain.per_example) == 2 and math.isfinite(plain.stderr())


def test_loglik_rejects_conversations_without_a_response(model):
    with pytest.raises(InputFormatError, match="conversation 0"):
        response_loglik(model, [messages(None, "Hi?")], progress=False)


def test_repetition_flags_loops():
    loop = repetition(["I'm sorry for your loss. " * 6])
    fresh = repetition(["The capital of France is Paris, a city on the Seine with many museums."])
    assert loop.repeated_ngram_share > 0.7 and fresh.repeated_ngram_share == 0
    assert loop.distinct_2 < 0.3 and fresh.distinct_2 == 1
    assert math.isnan(repetition(["one"]).distinct_2)


def test_perplexity_and_steering_evaluation(model):
    assert math.isnan(perplexity(model, ["Hi?"], [""], progress=False))
    fluent = perplexity(model, ["What is the capital of France?"], ["The capital of France is Paris."], progress=False)
    garbled = perplexity(model, ["What is the capital of France?"], ["Paris the France of capital is The."], progress=False)
    assert 1 < fluent < garbled
    result = evaluate_steering(model, PIRATE[:1], ["Hi?"], sampling=Sampling(max_new_tokens=8), progress=False)
    assert len(result.responses) == 1 and result.perplexity > 1
