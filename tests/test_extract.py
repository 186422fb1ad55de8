import torch

from workbench.chat import format_conversation, messages
from workbench.extract import extract_means

REPLIES = ["Arr!", "The sea is wide and the wind is strong tonight, matey.", "Yes.", "I think the answer is four."]


def test_batched_equals_unbatched(model):
    chats = [format_conversation(model.tokenizer, messages("You are a pirate.", "Hi?", r)) for r in REPLIES]
    layers = [3, 15, 29]
    batched = extract_means(model, chats, layers, batch_size=4, progress=False)
    single = torch.cat([extract_means(model, [c], layers, batch_size=1, progress=False) for c in chats])
    assert batched.shape == (4, 3, model.cfg.d_model)
    rel = (batched - single).norm(dim=-1) / single.norm(dim=-1)
    assert rel.max() < 1e-4


def test_prompt_selections_differ_from_response(model):
    chat = format_conversation(model.tokenizer, messages("You are a pirate.", "Hi?", "Arr, ahoy!"))
    response, prompt, last = (extract_means(model, [chat], [10], select=s, progress=False) for s in ("response", "prompt", "prompt_last"))
    assert not torch.allclose(response, prompt) and not torch.allclose(prompt, last)
