"""A quick Assistant Axis for the drift/steering/capping tests: mean(default) − mean(roles).

Built from hand-written answers (no generation: fast and deterministic) with the core extraction.
"""

from __future__ import annotations

import functools

from workbench.artifacts import LayerVectors
from workbench.chat import format_conversation, messages
from workbench.extract import extract_means

QUESTION = "Tell me about the sea."
DEFAULT_ANSWERS = [
    "The sea covers about 71% of Earth's surface and regulates the climate by storing heat.",
    "Oceans hold most of Earth's water. Tides are caused mainly by the Moon's gravity.",
    "Sure! The sea supports fisheries, shipping and a huge diversity of marine life.",
]
ROLES = {
    "You are a pirate captain.": "Arr, the sea be me mistress! Hoist the sails, ye scurvy dogs, treasure awaits!",
    "You are an ancient mystical oracle.": "The sea whispers the names of the dead, child. Its tides are the breath of the eternal.",
    "You are a wandering bard.": "O rolling sea, thou silver-crowned and ever-singing maiden, I sing of thy deep!",
}


@functools.cache
def quick_axis(model) -> LayerVectors:
    """Axis at every layer from 3 default and 3 role-play answers (rows: our layers)."""
    tokenizer = model.tokenizer
    default = [format_conversation(tokenizer, messages(None, QUESTION, a)) for a in DEFAULT_ANSWERS]
    roles = [format_conversation(tokenizer, messages(s, QUESTION, a)) for s, a in ROLES.items()]
    layers = list(range(model.cfg.n_layers))
    means = extract_means(model, default + roles, layers, progress=False)
    axis = means[: len(default)].mean(0) - means[len(default):].mean(0)
    return LayerVectors(axis, {"method": "quick test axis", "model": model.cfg.model_name})
