"""persona-workbench core: models, chat formatting, hooks, extraction, generation, artifacts, reports.

Layer convention (used everywhere in this project): **layer L is the output of block L**, i.e. the
TransformerLens hook point ``blocks.{L}.hook_resid_post``, which equals Hugging Face
``hidden_states[L + 1]``. See :mod:`workbench.layers` for how other repositories' indices convert.

The public names below load on first use (:mod:`workbench.exports`): ``import workbench`` and
``workbench --help`` do not import torch.
"""

from workbench.exports import lazy_exports

__version__ = "0.1.0"

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "workbench.models": ("SHIPPED_MODEL", "load_model"),
    "workbench.chat": ("ChatTokens", "format_conversation", "format_prompt", "messages"),
    "workbench.extract": ("extract_means",),
    "workbench.forward": ("iter_batches",),
    "workbench.generate": ("Sampling", "generate_responses"),
    "workbench.responses": ("generate_api", "generate_local", "record_chats", "response_cache", "usable"),
    "workbench.hooks": ("AblateDirection", "AddVector", "CapProjection", "Intervention", "MeanCapture", "SpliceSAE",
                        "TokenCapture", "apply"),
    "workbench.artifacts": ("LayerVectors", "load_vectors"),
    "workbench.layers": ("default_layer", "sweep_layers"),
    "workbench.cache": ("JsonlCache",),
    "workbench.metrics": ("TraitExample", "trait_metric"),
    "workbench.report": ("Report", "write_run"),
    "workbench.errors": ("InputFormatError", "LayerError", "ModelUnavailableError", "ShapeError", "WorkbenchError"),
})
