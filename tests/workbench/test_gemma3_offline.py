"""The Gemma 3 code path on the real Gemma 3 270M (the base model, from the gemma-offline extra).

Hooked logits against transformers', the layer convention, Gemma 3's chat format on the real
262k-token tokenizer, and extraction, steering, capping, SAE splicing and decomposition end to end.
A base model: these check the code path, not persona findings.
"""

import pytest
import torch

from sae_analysis.pipeline import corpus_rows, decompose_vector
from sae_analysis.report import decomposition_report
from sae_analysis.saes import load_sae, resolve
from workbench.chat import format_conversation, format_prompt, messages, stop_token_ids
from workbench.extract import extract_means
from workbench.generate import Sampling, generate_responses
from workbench.hooks import AddVector, CapProjection, Positions, SpliceSAE, TokenCapture, apply

LAYER = 12
# float32 on CPU. Measured: max |Δ logit| 9.2e-5 (logits reach ~100), residual streams equal to a
# relative 1.4e-7 (they reach ~1e5). TransformerLens and transformers order the same float
# operations differently, hence tolerances rather than equality.
LOGIT_TOLERANCE = 1e-3
RESID_TOLERANCE = 1e-5  # relative to the residual stream's max |value| at that layer


@pytest.fixture(scope="module")
def chat(gemma3):
    return format_conversation(gemma3.tokenizer, messages("Be a pirate.", "Hello there", "Arr, the sea is calm"))


def test_config_is_gemma_3_270m(gemma3):
    cfg = gemma3.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.d_vocab) == (18, 640, 262144)
    assert cfg.original_architecture == "Gemma3ForCausalLM" and cfg.model_name == "gemma-3-270m"
    assert cfg.use_qk_norm and cfg.window_size == 512 and cfg.n_key_value_heads == 1
    assert cfg.attn_types.count("global") == 3


def test_hooked_logits_and_resid_post_match_transformers(gemma3, gemma3_hf, chat):
    hf_model, _ = gemma3_hf
    tokens = torch.tensor([chat.ids])
    with torch.inference_mode():
        ours, cache = gemma3.run_with_cache(tokens)
        theirs = hf_model(tokens, output_hidden_states=True)
    assert (ours - theirs.logits).abs().max().item() < LOGIT_TOLERANCE
    assert (ours.argmax(-1) == theirs.logits.argmax(-1)).all()
    # Layer L = blocks.L.hook_resid_post = hidden_states[L+1] (the last hidden state is after the final norm).
    for layer in range(gemma3.cfg.n_layers - 1):
        hidden = theirs.hidden_states[layer + 1]
        diff = (cache[f"blocks.{layer}.hook_resid_post"] - hidden).abs().max() / hidden.abs().max()
        assert diff < RESID_TOLERANCE, f"layer {layer}: relative difference {diff:.2e}"


def test_gemma3_chat_format_on_the_real_tokenizer(gemma3):
    tokenizer = gemma3.tokenizer
    prompt = format_prompt(tokenizer, messages("Be a pirate.", "Hello there"))
    assert tokenizer.decode(list(prompt)) == (
        "<bos><start_of_turn>user\nBe a pirate.\n\nHello there<end_of_turn>\n<start_of_turn>model\n")
    start, end = tokenizer.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>"])
    assert prompt.count(tokenizer.bos_token_id) == 1 and prompt[0] == tokenizer.bos_token_id
    assert prompt.count(start) == 2 and prompt.count(end) == 1  # turn markers are single tokens
    assert end in stop_token_ids(tokenizer) and tokenizer.eos_token_id in stop_token_ids(tokenizer)


def test_gemma3_response_spans_are_the_trimmed_replies(gemma3):
    tokenizer = gemma3.tokenizer
    conversation = messages("Be a pirate.", "Hello there", "  Arr, the sea is calm  ")
    conversation += [{"role": "user", "content": "how are you"}, {"role": "assistant", "content": "Calm and blue."}]
    chat = format_conversation(tokenizer, conversation)
    replies = [tokenizer.decode(list(chat.ids[s:e])) for s, e in chat.assistant_spans]
    assert replies == ["Arr, the sea is calm", "Calm and blue."]
    assert tokenizer.decode([chat.ids[chat.assistant_spans[0][1]]]) == "<end_of_turn>"
    prompt = format_prompt(tokenizer, conversation[:2])
    assert chat.ids[: len(prompt)] == prompt and chat.assistant_spans[0][0] == len(prompt)


def test_extraction_is_the_mean_over_response_tokens(gemma3):
    chats = [format_conversation(gemma3.tokenizer, messages(None, q, a)) for q, a in
             [("Who are you?", "A sailor of the northern seas."), ("What is two plus two?", "Four.")]]
    means = extract_means(gemma3, chats, layers=[5, LAYER], progress=False)
    for i, chat in enumerate(chats):
        with torch.inference_mode():
            _, cache = gemma3.run_with_cache(torch.tensor([chat.ids]))
        mask = chat.response_mask()
        for j, layer in enumerate([5, LAYER]):
            expected = cache[f"blocks.{layer}.hook_resid_post"][0, mask].mean(0)
            assert torch.allclose(means[i, j], expected, atol=1e-3 * expected.abs().max().item())


def test_steering_and_capping_act_at_response_tokens_only(gemma3, chat):
    direction = torch.randn(640, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([chat.ids])
    mask = chat.response_mask()
    clean, steered, capped = TokenCapture((LAYER,)), TokenCapture((LAYER,)), TokenCapture((LAYER,))
    positions = Positions(response_mask=mask.unsqueeze(0))
    with torch.inference_mode():
        with apply(gemma3, [clean], positions):
            clean_logits = gemma3(tokens)
        with apply(gemma3, [AddVector({LAYER: direction}, 3.0, where="response"), steered], positions):
            steered_logits = gemma3(tokens)
        unit = direction / direction.norm()
        tau = float((clean.values[LAYER][0, mask] @ unit).max()) + 5.0  # above every response token
        with apply(gemma3, [CapProjection({LAYER: direction}, {LAYER: tau}, where="response"), capped], positions):
            gemma3(tokens)
    delta = steered.values[LAYER][0] - clean.values[LAYER][0]
    assert torch.allclose(delta[mask], (3.0 * direction).expand(int(mask.sum()), -1), atol=1e-3)
    assert delta[~mask].abs().max() == 0
    assert (steered_logits - clean_logits)[0, mask].abs().max() > 1e-2
    projection = capped.values[LAYER][0] @ unit
    assert torch.allclose(projection[mask], torch.full((int(mask.sum()),), tau), atol=1e-2)
    assert torch.equal(capped.values[LAYER][0, ~mask], clean.values[LAYER][0, ~mask])


def test_steered_generation_differs(gemma3):
    """Gemma's residual stream is large (token norms in the thousands at layer 12), so the steering
    vector is scaled to half the prompt's median token norm, as a real vector's coefficient would be."""
    conversation = [messages(None, "Tell me about the sea.")]
    sampling = Sampling(max_new_tokens=6)
    capture = TokenCapture((LAYER,))
    with torch.inference_mode(), apply(gemma3, [capture]):
        gemma3(torch.tensor([format_prompt(gemma3.tokenizer, conversation[0])]))
    scale = 0.5 * capture.values[LAYER][0, 1:].norm(dim=-1).median().item()  # BOS excluded
    direction = torch.randn(640, generator=torch.Generator().manual_seed(1))
    direction = scale * direction / direction.norm()
    plain = generate_responses(gemma3, conversation, sampling, progress=False)
    steered = generate_responses(gemma3, conversation, sampling, [AddVector({LAYER: direction}, 1.0)], progress=False)
    assert plain != steered and plain == generate_responses(gemma3, conversation, sampling, progress=False)


@pytest.fixture(scope="module")
def random_sae_dir(tmp_path_factory):
    """A random JumpReLU SAE of Gemma 3 270M's shape (640 → 2048) at layer 12, saved like sae-lens."""
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(0)
    cfg = JumpReLUSAEConfig(d_in=640, d_sae=2048, metadata=SAEMetadata(
        hook_name=f"blocks.{LAYER}.hook_resid_post", model_name="gemma-3-270m"))
    sae = JumpReLUSAE(cfg)
    with torch.no_grad():
        sae.W_dec.copy_(torch.randn(2048, 640) / 640 ** 0.5)
        sae.W_enc.copy_(sae.W_dec.T * 0.1)
        sae.threshold.fill_(0.05)
    path = tmp_path_factory.mktemp("sae") / "gemma3-270m-random-L12"
    sae.save_model(path)
    return path


def test_sae_splice_on_real_activations(gemma3, chat, random_sae_dir):
    sae = load_sae(str(random_sae_dir))
    tokens = torch.tensor([chat.ids])
    clean, spliced, edited = TokenCapture((LAYER,)), TokenCapture((LAYER,)), TokenCapture((LAYER,))
    with torch.inference_mode():
        with apply(gemma3, [clean]):
            gemma3(tokens)
        with apply(gemma3, [SpliceSAE(sae, LAYER, {}), spliced]):
            gemma3(tokens)
        with apply(gemma3, [SpliceSAE(sae, LAYER, {7: 20.0}), edited]):
            gemma3(tokens)
        resid = clean.values[LAYER]
        features = sae.encode(resid)
        assert (features > 0).any(), "the random SAE must fire on real activations"
        target = features.clone()
        target[..., 7] = 20.0
        expected = resid + sae.decode(target) - sae.decode(features)
    assert torch.equal(spliced.values[LAYER], resid)  # the error term is kept: no edit, no change
    assert torch.allclose(edited.values[LAYER], expected, atol=1e-3)


def test_decomposition_on_real_gemma3_activations(gemma3, random_sae_dir):
    spec = resolve(str(random_sae_dir))
    sae = load_sae(spec)
    W = sae.W_dec.detach()
    noise = torch.randn(640, generator=torch.Generator().manual_seed(2))
    vector = 4 * W[42] / W[42].norm() + 0.1 * noise / noise.norm()
    rows = corpus_rows(gemma3, limit=8)
    result = decompose_vector(vector, LAYER, sae, spec, gemma3, rows, k=5)
    d = result.decomposition
    assert d.top_positive[0].index == 42 and d.max_abs_cos > d.baseline.p99_max_abs_cos
    assert result.corpus is not None and result.corpus.n_rows == 8
    page = decomposition_report(result, "planted").render()
    assert "Max-activating contexts" in page and spec.tuning in page


def test_gguf_file_of_gemma3_loads_through_the_cache(gemma3, tmp_path):
    """``--model path.gguf``: the joined Gemma 3 GGUF has the packaged sha256, so it reads the cache."""
    from workbench.gguf_models import GEMMA3_270M_SHA256, dequantized_dir, gemma3_270m_parts
    from workbench.models import load_model

    path = tmp_path / "my-gemma.gguf"
    path.write_bytes(b"".join(p.read_bytes() for p in gemma3_270m_parts()))
    assert (dequantized_dir(GEMMA3_270M_SHA256) / "model.safetensors").is_file()
    model = load_model(str(path))
    assert model.cfg.model_name == "my-gemma" and model.tokenizer.chat_template
    tokens = torch.tensor([[2, 818, 5279, 529, 7001, 563]])
    with torch.inference_mode():
        assert torch.equal(model(tokens), gemma3(tokens))
