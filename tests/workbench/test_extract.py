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


def test_extraction_runs_no_token_after_the_last_selected_one(model):
    """Later tokens cannot change earlier activations (causal), so prompt selections skip the reply
    and response selections skip the end-of-turn tokens; the means equal a full-sequence read."""
    chat = format_conversation(model.tokenizer, messages("You are a pirate.", "Hello?", "Arr, ahoy matey, a fine day!"))
    lengths: list[int] = []

    def record(embed, hook):
        lengths.append(embed.shape[1])

    with model.hooks(fwd_hooks=[("hook_embed", record)]):
        prompt = extract_means(model, [chat], [5], select="prompt", progress=False)[0, 0]
        extract_means(model, [chat], [5], select="response", progress=False)
    prompt_end = int(chat.prompt_mask().nonzero().max()) + 1
    assert lengths == [prompt_end, chat.assistant_spans[0][1]] and chat.assistant_spans[0][1] < len(chat)
    with torch.inference_mode():
        _, cache = model.run_with_cache(torch.tensor([chat.ids]), names_filter="blocks.5.hook_resid_post")
    full = cache["blocks.5.hook_resid_post"][0, chat.prompt_mask()].mean(0)
    assert ((prompt - full).norm() / full.norm()).item() < 1e-5
