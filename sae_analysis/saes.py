"""Which SAE reads which layer: the shipped SmolLM2 SAE and GemmaScope through sae-lens' registry.

Why a resolver separate from loading: GemmaScope weights are about 4.8 GB per SAE and usually not
on the machine, yet a user must learn offline whether an SAE exists for the vector's layer, its
hook, and its shapes. sae-lens ships its registry (``pretrained_saes.yaml``) inside the package,
and GemmaScope's config is a pure function of the repository and folder names, so
:func:`resolve` answers everything but the weights with no network. :func:`load_sae` then loads
for real: from a folder (safetensors + ``cfg.json``) or through ``SAE.from_pretrained`` when the
weights are cached or the hub is reachable, else it fails at once saying what to download.

A spec is ``shipped`` (the SmolLM2 SAE in this package), a folder path, or ``RELEASE/SAE_ID``
(``gemma-scope-27b-pt-res-canonical/layer_22/width_131k/canonical``).

GemmaScope for Gemma 2 27B exists only for the *base* model (``gemma-scope-27b-pt-res*``); the
workbench applies it to the instruction-tuned model's activations, and every spec says so.
Gemma Scope 2 (Gemma 3, ``gemma-scope-2-{270m,1b,4b,12b,27b}-{pt,it}-res*``) has instruction-tuned
SAEs: ``gemma-scope-2-27b-it-res/layer_31_width_262k_l0_medium`` reads Gemma 3 27B-it itself. Its
residual-stream specs resolve offline the same way (hook, d_in and d_sae follow from the names).
Every spec names its family and whether its tuning matches the instruction-tuned model
(:attr:`SAESpec.family`, :attr:`SAESpec.tuning`).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import InputFormatError, LayerError, ModelUnavailableError

SHIPPED_DIR = Path(__file__).parent / "shipped" / "smollm2-135m-instruct-L18"
SHIPPED_ALIASES = ("shipped", "smollm2-135m-instruct-L18")
_NEURONPEDIA = "https://www.neuronpedia.org"
_WIDTHS = {"width_4k": 4096, "width_16k": 16384, "width_32k": 32768, "width_65k": 65536,
           "width_131k": 131072, "width_262k": 262144, "width_524k": 524288, "width_1m": 1048576}


@dataclass(frozen=True)
class SAESpec:
    """Everything known about an SAE before its weights are loaded.

    ``source``: ``"shipped"``, ``"folder"`` or ``"registry"``. ``trained_on``: the model whose
    activations trained it (a base model for GemmaScope 27B). ``neuronpedia_id``: e.g.
    ``gemma-2-27b/22-gemmascope-res-131k`` (None where Neuronpedia has no page).
    """

    id: str
    source: str
    hook_name: str
    layer: int | None
    d_in: int
    d_sae: int
    architecture: str
    trained_on: str
    release: str | None = None
    sae_id: str | None = None
    repo_id: str | None = None
    folder: str | None = None
    path: str | None = None
    neuronpedia_id: str | None = None

    @property
    def is_base_model_sae(self) -> bool:
        """True when the SAE was trained on a base model (GemmaScope ``-pt-``), not the chat model."""
        return self.release is not None and "-pt-" in self.release

    @property
    def family(self) -> str:
        """Which SAE family: Gemma Scope 2 (Gemma 3), GemmaScope (Gemma 2), the shipped SAE, a folder."""
        if self.release is not None and self.release.startswith("gemma-scope-2-"):
            return "Gemma Scope 2 (Gemma 3)"
        if self.release is not None and self.release.startswith("gemma-scope-"):
            return "GemmaScope (Gemma 2)"
        return {"shipped": "shipped (trained by this project)"}.get(self.source, self.source)

    @property
    def tuning(self) -> str:
        """Whether the SAE's training model matches an instruction-tuned model's tuning."""
        if self.is_base_model_sae:
            return "base-model SAE applied to the instruction-tuned model's activations (tuning mismatch)"
        if self.release is not None and "-it-" in self.release:
            return "instruction-tuned SAE (tuning matches the -it model)"
        if self.source == "shipped":
            return "trained on the chat model it reads (tuning matches)"
        return "tuning is that of its training model (trained on, above)"

    def notes(self) -> str:
        """One line for reports and ``workbench info``: shapes, family, and whether the tuning matches."""
        return (f"{self.family}, {self.architecture}, {self.hook_name}, d_in {self.d_in}, d_sae {self.d_sae}, "
                f"trained on {self.trained_on}; {self.tuning}")

    def neuronpedia_url(self, feature: int) -> str | None:
        """Neuronpedia page of one feature, where Neuronpedia hosts this SAE."""
        return f"{_NEURONPEDIA}/{self.neuronpedia_id}/{int(feature)}" if self.neuronpedia_id else None

    def download_hint(self) -> str:
        """The command that fetches this SAE's weights where there is network."""
        if self.repo_id is None:
            return f"the weights are in {self.path}"
        return f"huggingface-cli download {self.repo_id} --include '{self.folder}/*'"

    @property
    def weights_file(self) -> str | None:
        """The weights file inside the hub folder (GemmaScope: params.npz; Gemma Scope 2: params.safetensors)."""
        if self.folder is None:
            return None
        name = "params.safetensors" if self.family.startswith("Gemma Scope 2") else "params.npz"
        return f"{self.folder}/{name}"


def _hook_layer(hook_name: str) -> int | None:
    match = re.match(r"blocks\.(\d+)\.", hook_name)
    return int(match.group(1)) if match else None


def _from_folder(path: Path, source: str, spec_id: str) -> SAESpec:
    cfg_file = path / "cfg.json"
    if not cfg_file.is_file():
        raise InputFormatError(f"SAE folder {path}: no cfg.json (expected cfg.json + sae_weights.safetensors)")
    try:
        cfg = json.loads(cfg_file.read_text())
        metadata = cfg.get("metadata", cfg)
        hook_name = metadata["hook_name"]
        d_in, d_sae = int(cfg["d_in"]), int(cfg["d_sae"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFormatError(f"{cfg_file}: missing or malformed field {exc}; need d_in, d_sae, metadata.hook_name") from exc
    return SAESpec(
        id=spec_id, source=source, hook_name=hook_name, layer=_hook_layer(hook_name), d_in=d_in, d_sae=d_sae,
        architecture=cfg.get("architecture", "unknown"), trained_on=metadata.get("model_name") or "unknown",
        path=str(path),
    )


def _registry_text() -> str:
    """sae-lens' registry file, found without importing sae-lens (its import takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("sae_lens")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("sae-lens is not installed: pip install sae-lens==6.54.12")
    return (Path(spec.submodule_search_locations[0]) / "pretrained_saes.yaml").read_text()


@functools.cache
def release_names() -> tuple[str, ...]:
    """Every release in sae-lens' registry."""
    return tuple(re.findall(r"^([^\s#][^:\n]*):\s*$", _registry_text(), flags=re.M))


@functools.cache
def registry_entry(release: str) -> dict:
    """One release's registry block (repo_id, model, conversion_func, saes), parsed alone.

    Parsing only this block takes milliseconds; the whole 35k-line file takes 10+ s on a busy CPU.
    """
    import yaml

    text = _registry_text()
    match = re.search(rf"^{re.escape(release)}:\s*\n((?:[ \t].*\n|\s*\n)*)", text, flags=re.M)
    if match is None:
        close = difflib.get_close_matches(release, release_names(), n=5, cutoff=0.6)
        raise InputFormatError(f"SAE release {release!r} is not in sae-lens' registry; close names: {close or 'none'}")
    return yaml.safe_load(match.group(1))


def layers_in_release(release: str) -> dict[int, list[str]]:
    """Layer → SAE ids of a registry release (e.g. which layers GemmaScope 27B covers)."""
    out: dict[int, list[str]] = {}
    for sae in registry_entry(release)["saes"]:
        match = re.search(r"layer_(\d+)", sae["id"])
        if match:
            out.setdefault(int(match.group(1)), []).append(sae["id"])
    return dict(sorted(out.items()))


_GEMMA_2_D_IN = {"2b": 2304, "9b": 3584, "27b": 4608}


def gemma_2_config(repo_id: str, folder: str) -> dict:
    """Hook, d_in, d_sae of a GemmaScope residual SAE from its names, as sae-lens' gemma_2 loader
    derives them (a test checks equality with ``get_gemma_2_config_from_hf``)."""
    size = re.search(r"gemma-scope-(\d+b)", repo_id)
    layer = re.search(r"layer_(\d+)", folder)
    width = next((w for key, w in _WIDTHS.items() if key in folder), None)
    if size is None or layer is None or width is None or "-res" not in repo_id:
        raise InputFormatError(f"{repo_id}/{folder}: not a GemmaScope residual-stream SAE the workbench resolves")
    return {"hook_name": f"blocks.{layer.group(1)}.hook_resid_post", "d_in": _GEMMA_2_D_IN[size.group(1)],
            "d_sae": width, "architecture": "jumprelu"}


_GEMMA_3_D_IN = {"270m": 640, "1b": 1152, "4b": 2560, "12b": 3840, "27b": 5376}


def gemma_3_config(repo_id: str, folder: str) -> dict:
    """Hook, d_in, d_sae of a Gemma Scope 2 residual SAE from its names (``resid_post/`` and
    ``resid_post_all/`` folders), as sae-lens' gemma_3 loader reads them from the hub (hook from
    the folder, shapes from the safetensors header; the d_in table is Gemma 3's hidden sizes)."""
    size = re.search(r"gemma-scope-2-(\d+[mb])", repo_id)
    layer = re.search(r"layer_(\d+)", folder)
    width = next((w for key, w in _WIDTHS.items() if f"{key}_" in folder or folder.endswith(key)), None)
    if size is None or layer is None or width is None or not folder.startswith("resid_post"):
        raise InputFormatError(
            f"{repo_id}/{folder}: not a Gemma Scope 2 residual-stream SAE; the workbench resolves "
            f"resid_post SAEs offline (mlp, attention and transcoder releases: load them by folder)"
        )
    return {"hook_name": f"blocks.{layer.group(1)}.hook_resid_post", "d_in": _GEMMA_3_D_IN[size.group(1)],
            "d_sae": width, "architecture": "jumprelu"}


_CONFIGS = {"gemma_2": gemma_2_config, "gemma_3": gemma_3_config}


def _from_registry(release: str, sae_id: str) -> SAESpec:
    entry = registry_entry(release)
    saes = {sae["id"]: sae for sae in entry["saes"]}
    if sae_id not in saes:
        layers = sorted(layers_in_release(release))
        close = difflib.get_close_matches(sae_id, list(saes), n=5, cutoff=0.5)
        raise InputFormatError(
            f"SAE id {sae_id!r} is not in release {release}; it has layers {layers}; close ids: {close or 'none'}"
        )
    if entry.get("conversion_func") not in _CONFIGS:
        raise InputFormatError(
            f"release {release} uses the {entry.get('conversion_func')!r} format; the workbench resolves "
            f"GemmaScope (gemma_2) and Gemma Scope 2 (gemma_3) releases offline. Load it by folder instead."
        )
    folder = str(saes[sae_id]["path"])
    cfg = _CONFIGS[entry["conversion_func"]](entry["repo_id"], folder)
    return SAESpec(
        id=f"{release}/{sae_id}", source="registry", hook_name=cfg["hook_name"], layer=_hook_layer(cfg["hook_name"]),
        d_in=cfg["d_in"], d_sae=cfg["d_sae"], architecture=cfg["architecture"], trained_on=entry["model"],
        release=release, sae_id=sae_id, repo_id=entry["repo_id"], folder=folder,
        neuronpedia_id=saes[sae_id].get("neuronpedia"),
    )


def resolve(spec: str) -> SAESpec:
    """Release, id, hook, layer and shapes of an SAE, offline. See the module doc for spec forms."""
    if spec in SHIPPED_ALIASES:
        return _from_folder(SHIPPED_DIR, "shipped", "shipped:smollm2-135m-instruct-L18")
    if Path(spec).is_dir():
        return _from_folder(Path(spec), "folder", str(spec))
    if "/" not in spec:
        raise InputFormatError(f"SAE spec {spec!r}: expected 'shipped', a folder with cfg.json, or RELEASE/SAE_ID")
    release, sae_id = spec.split("/", 1)
    return _from_registry(release, sae_id)


def check_layer(spec: SAESpec, layer: int) -> None:
    """Raise LayerError when ``spec`` does not read ``layer``, naming the layers that have SAEs."""
    if spec.layer == layer:
        return
    if spec.release is not None:
        available = f"release {spec.release} has SAEs at layers {sorted(layers_in_release(spec.release))}"
    else:
        available = f"this SAE reads layer {spec.layer} only"
    raise LayerError(f"the vector is at layer {layer} but SAE {spec.id} reads {spec.hook_name}; {available}")


def sae_layer(spec: SAESpec, layer: int | None = None) -> int:
    """The layer a vector is read at for this SAE: ``layer``, else the one the SAE's hook reads;
    a LayerError (naming the layers that have SAEs) when the SAE does not read it."""
    layer = spec.layer if layer is None else layer
    if layer is None:
        raise InputFormatError(f"SAE {spec.id} reads {spec.hook_name}, not a residual layer; pass --layer")
    check_layer(spec, layer)
    return layer


def default_model_name(spec: SAESpec) -> str | None:
    """The model the workbench pairs with an SAE (the shipped model for the shipped SAE), if any."""
    from workbench.models import KNOWN_MODELS, SHIPPED_MODEL  # imports transformer_lens: only when asked

    if spec.source == "shipped":
        return SHIPPED_MODEL
    if spec.trained_on in KNOWN_MODELS:
        return spec.trained_on
    return {"gemma-2-27b": "google/gemma-2-27b-it", "gemma-2-9b-it": "google/gemma-2-9b-it",
            "gemma-2-2b": "google/gemma-2-2b-it", "google/gemma-3-270m-it": "gemma-3-270m",
            "google/gemma-3-270m": "gemma-3-270m"}.get(spec.trained_on)


def _weights_cached(spec: SAESpec) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(spec.repo_id, spec.weights_file), str)


def load_sae(spec: SAESpec | str, device: str = "cpu"):
    """The sae-lens ``SAE`` of a spec: from its folder, or from the hub cache / hub (GemmaScope).

    Offline with the weights absent it raises ModelUnavailableError at once with the download
    command, never a hang.
    """
    from sae_lens import SAE

    spec = resolve(spec) if isinstance(spec, str) else spec
    if spec.path is not None:
        weights = Path(spec.path) / "sae_weights.safetensors"
        if not weights.is_file():
            raise ModelUnavailableError(f"SAE folder {spec.path} has no sae_weights.safetensors")
        with _model_kwargs_accounted_for():
            return _checked_kwargs(SAE.load_from_disk(spec.path, device=device), spec)
    from workbench.models import hub_reachable

    if not _weights_cached(spec) and not hub_reachable():
        raise ModelUnavailableError(
            f"SAE {spec.id} ({spec.d_sae} × {spec.d_in}, about {spec.d_sae * spec.d_in * 2 * 4 / 1e9:.1f} GB) "
            f"is not cached and the hub cannot be reached. Where there is network: {spec.download_hint()}"
        )
    with _model_kwargs_accounted_for():
        return _checked_kwargs(SAE.from_pretrained(spec.release, spec.sae_id, device=device), spec)


@contextlib.contextmanager
def _model_kwargs_accounted_for():
    """Silence sae-lens' "This SAE has non-empty model_from_pretrained_kwargs … load the model like
    so" UserWarning (and only it) while an SAE loads: :func:`_checked_kwargs` does the check it asks
    for against how :func:`workbench.models.load_model` really loads models."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*This SAE has non-empty model_from_pretrained_kwargs",
                                category=UserWarning)
        yield


def _checked_kwargs(sae, spec: SAESpec):
    """``sae``, after warning when its ``model_from_pretrained_kwargs`` ask for anything but what
    :func:`workbench.models.load_model` already does (load with no weight processing): then its
    activations may not match the ones the SAE was trained on."""
    from workbench.models import NO_PROCESSING

    kwargs = dict(getattr(sae.cfg.metadata, "model_from_pretrained_kwargs", None) or {})
    unmet = {k: v for k, v in kwargs.items() if NO_PROCESSING.get(k, object()) != v}
    if unmet:
        warnings.warn(f"SAE {spec.id} asks for the model to be loaded with {unmet}; the workbench loads models "
                      f"with {NO_PROCESSING} only, so activations may differ from the SAE's training data", UserWarning)
    return sae


_LISTED = (
    "gemma-scope-27b-pt-res-canonical/layer_10/width_131k/canonical",
    "gemma-scope-27b-pt-res-canonical/layer_22/width_131k/canonical",
    "gemma-scope-27b-pt-res-canonical/layer_34/width_131k/canonical",
    *(f"gemma-scope-27b-pt-res/layer_22/width_131k/average_l0_{l0}" for l0 in (20, 31, 48, 82, 150, 290)),
    "gemma-scope-9b-it-res-canonical/layer_20/width_131k/canonical",
    "gemma-scope-2b-pt-res-canonical/layer_12/width_65k/canonical",
    *(f"gemma-scope-2-27b-it-res/layer_{layer}_width_262k_l0_medium" for layer in (16, 31, 40, 53)),
    "gemma-scope-2-270m-it-res/layer_12_width_16k_l0_medium",
)


def known_saes() -> list[dict]:
    """SAEs the workbench names in ``workbench info``: the shipped one, then GemmaScope (offline facts)."""
    out = []
    for spec_id in ("shipped", *_LISTED):
        try:
            spec = resolve(spec_id)
        except (InputFormatError, KeyError) as exc:  # a registry without this entry: say so, don't hide it
            out.append({"id": spec_id, "notes": f"unavailable: {exc}"})
            continue
        out.append({"id": spec.id, "hook_name": spec.hook_name, "d_in": spec.d_in, "d_sae": spec.d_sae,
                    "trained_on": spec.trained_on, "notes": spec.notes()})
    return out
