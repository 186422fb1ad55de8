"""The one batched forward primitive on the shipped model: batching changes no row, order and masks
come back right, the early stop holds, and no hook or inference mode outlives a pass."""

from types import SimpleNamespace

import pytest
import torch

from workbench.chat import format_conversation, messages
from workbench.errors import InputFormatError
from workbench.forward import iter_batches, pad_token_id, plan_batches
from workbench.hooks import TokenCapture

REPLIES = ["Arr!", "The sea is wide and the wind is strong tonight, matey.", "Yes.", "I think the answer is four.", "Ok."]
LAYER = 6


@pytest.fixture(scope="module")
def chats(model):
    return [format_conversation(model.tokenizer, messages("You are a pirate." if i % 2 else None, f"Question {i}?", r))
            for i, r in enumerate(REPLIES)]


def _hooks_left(model) -> int:
    return sum(len(point._forward_hooks) for point in model.hook_dict.values())


def test_batched_rows_equal_unbatched_passes_in_the_callers_order(model, chats):
    batched = {}
    for batch in iter_batches(model, chats, batch_size=3, stop_at_layer=LAYER + 1):
        assert list(batch.lengths) == sorted(batch.lengths)
        for row, (i, n) in enumerate(zip(batch.indices, batch.lengths)):
            assert batch.tokens[row, :n].tolist() == list(chats[i].ids) and n == len(chats[i])
            batched[i] = batch.output[row, :n]
    assert sorted(batched) == list(range(len(chats)))
    for i, chat in enumerate(chats):
        (single,) = iter_batches(model, [chat], batch_size=1, stop_at_layer=LAYER + 1)
        rel = (batched[i] - single.output[0]).norm(dim=-1) / single.output[0].norm(dim=-1)
        assert rel.max() < 1e-5


def test_plan_batches_sorts_stably_by_length():
    assert plan_batches([5, 2, 5, 1, 2], 2) == [[3, 1], [4, 0], [2]]
    with pytest.raises(InputFormatError, match="batch_size"):
        plan_batches([1], 0)


def test_response_mask_matches_the_chat_spans_and_reaches_interventions(model, chats):
    seen = []

    class Record:
        layers = (0,)

        def __call__(self, layer, resid, positions):
            seen.append(positions.response_mask.clone())
            return resid

    for batch in iter_batches(model, chats, [Record()], batch_size=2, stop_at_layer=1):
        assert torch.equal(seen[-1], batch.response_mask)
        for row, (i, n) in enumerate(zip(batch.indices, batch.lengths)):
            assert torch.equal(batch.response_mask[row, :n], chats[i].response_mask())
            assert not batch.response_mask[row, n:].any()
    assert len(seen) == 3


def test_lengths_cut_sequences_and_stop_at_layer_runs_no_later_block(model, chats):
    ran = []

    class Record:
        layers = (LAYER, LAYER + 1)

        def __call__(self, layer, resid, positions):
            ran.append(layer)
            return resid

    capture = TokenCapture((LAYER,))
    cut = [len(c) - 3 for c in chats]
    for batch in iter_batches(model, chats, [Record(), capture], batch_size=8, stop_at_layer=LAYER + 1, lengths=cut):
        assert batch.tokens.shape[1] == max(cut) and batch.output.shape[-1] == model.cfg.d_model
        assert torch.equal(batch.output.float().cpu(), capture.values[LAYER])  # the stream after block LAYER
    assert ran == [LAYER]


def test_pad_rule_and_pads_in_the_batch(model, chats):
    assert pad_token_id(model.tokenizer) == model.tokenizer.pad_token_id
    assert pad_token_id(SimpleNamespace(pad_token_id=None)) == 0
    assert pad_token_id(SimpleNamespace(pad_token_id=7)) == 7
    (batch,) = iter_batches(model, chats[:2], batch_size=2, stop_at_layer=1)
    short = min(batch.lengths)
    assert (batch.tokens[0, short:] == pad_token_id(model.tokenizer)).all()


def test_no_hook_or_inference_mode_outlives_a_pass(model, chats):
    class Boom:
        layers = (2,)

        def __call__(self, layer, resid, positions):
            raise RuntimeError("boom inside the forward pass")

    with pytest.raises(RuntimeError, match="boom inside"):
        for _ in iter_batches(model, chats, [Boom()], batch_size=2, stop_at_layer=3):
            pass
    assert _hooks_left(model) == 0
    with pytest.raises(ValueError, match="caller"):
        for _ in iter_batches(model, chats, [TokenCapture((2,))], batch_size=2, stop_at_layer=3):
            assert _hooks_left(model) == 0 and not torch.is_inference_mode_enabled()
            raise ValueError("the caller stops")
    assert _hooks_left(model) == 0


def test_a_sequence_beyond_the_context_is_named(model, chats):
    with pytest.raises(InputFormatError, match="sequence 1: .* exceed the context"):
        list(iter_batches(model, chats[:2], lengths=[3, model.cfg.n_ctx + 1]))
