"""The one place the layer-index convention is written down, plus converters.

Ours (TransformerLens): layer ``L`` = output of block ``L`` = ``blocks.{L}.hook_resid_post``
= Hugging Face ``hidden_states[L + 1]``.

| source            | their index ``i`` means            | ours        |
|-------------------|------------------------------------|-------------|
| assistant-axis    | output of decoder ``layers[i]``    | ``i``       |
| persona_vectors   | HF ``hidden_states[i]`` (block i−1)| ``i − 1``   |
| GemmaScope        | ``layer_i`` = output of block ``i``| ``i``       |

One exception on Hugging Face's side: its *last* ``hidden_states`` entry has the final norm
applied, so our last layer (raw output of the last block) differs from ``hidden_states[-1]``.

Every default layer comes from two rules here: :func:`default_layer` (the one layer a method reads
or steers at) and :func:`sweep_layers` (the few a sweep chooses among).
"""

from workbench.errors import LayerError


def resid_post_hook(layer: int) -> str:
    """TransformerLens hook name of our layer ``layer``."""
    return f"blocks.{layer}.hook_resid_post"


def check_layer(layer: int, n_layers: int, what: str = "layer") -> int:
    """Return ``layer`` if it is a valid block index, else raise a LayerError naming the range."""
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise LayerError(f"{what} must be an integer, got {layer!r}")
    if not 0 <= layer < n_layers:
        raise LayerError(f"{what} {layer} is out of range: this model has layers 0..{n_layers - 1}")
    return layer


def from_hidden_states_index(index: int) -> int:
    """Convert an HF ``hidden_states`` index (persona_vectors' convention) to ours.

    ``hidden_states[0]`` is the embedding output, which has no block; it has no layer of ours.
    """
    if index < 1:
        raise LayerError(
            f"hidden_states index {index} is the embedding output (no block); "
            "it has no workbench layer"
        )
    return index - 1


def default_layer(model, fallback: int | None = None) -> int:
    """The one layer a method reads or steers at when the user names none.

    A model the workbench knows gets its card's layer (``KnownModel.default_layer``: about 60% of
    depth, where persona directions separate best, and for Gemma 2 the layer GemmaScope covers, 22
    of 46 in 27B); any other model gets ``fallback`` when given, else ``round(0.6 * n_layers)``.
    ``fallback`` exists for ``traits screen``, which reads an unknown model at the middle of the
    trait sweep (``sweep_layers(n)[1]``), its value before the rules were one.
    """
    from workbench.models import known_model  # a caller holding a model has imported it; others skip its seconds

    known = known_model(model.cfg.model_name)
    if known is not None:
        return known.default_layer
    return fallback if fallback is not None else round(0.6 * model.cfg.n_layers)


def sweep_layers(n_layers: int) -> tuple[int, int, int]:
    """The layers a sweep tries when the user names none: a third, half and two thirds of depth.

    A sweep is how a trait vector's steering layer gets chosen, so it spans the middle of the
    network instead of trusting one layer; its middle entry, ``n_layers // 2``, is where a trait
    vector is read (monitoring, geometry) when no sweep chose a layer.
    """
    return n_layers // 3, n_layers // 2, 2 * n_layers // 3
