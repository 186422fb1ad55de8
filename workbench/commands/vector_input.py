"""The vector file and the model of a vector-taking command (``steer``, ``cap calibrate``, ``drift``).

Why one helper: every such command must read every vector format the workbench imports (its own
safetensors, the Assistant Axis release's and persona_vectors' ``.pt``, see
:func:`workbench.artifacts.load_vectors`) in the model's layer convention, and must fail on a bad
file or another model's vector *before* the slow model load when the model's card gives its shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from workbench.artifacts import LayerVectors


def load_model_and_vectors(path: Path, model_name: str | None, device: str = "cpu") -> tuple[HookedTransformer, LayerVectors]:
    """The model ``model_name`` and the vector file ``path`` read and checked for its shape; a
    vector of another model fails naming both shapes, before the model loads when its card is known."""
    from workbench.artifacts import load_vectors
    from workbench.models import card_shape, load_model

    load_vectors(path, *card_shape(model_name))  # fail on a bad file before the slow model load
    model = load_model(model_name, device=device)
    return model, load_vectors(path, model.cfg.n_layers, model.cfg.d_model)
