"""persona-workbench core: models, chat formatting, hooks, extraction, generation, artifacts.

Layer convention (used everywhere in this project): **layer L is the output of block L**, i.e. the
TransformerLens hook point ``blocks.{L}.hook_resid_post``, which equals Hugging Face
``hidden_states[L + 1]``. See :mod:`workbench.layers` for how other repositories' indices convert.
"""

__version__ = "0.1.0"
