"""The demo's trait stage: sycophantic, evil and pirate (the one the small model expresses) through
:func:`vectors.traits.pipeline.run_traits`, their geometry with the Assistant Axis from the context.

Sizes: 8 extraction questions per trait under one instruction pair, 32 sampled tokens, 4 held-out
examples, layer 15, five coefficients, 3 random directions (``--quick``: 2 questions, 12 tokens,
3 coefficients). Hands each trait's response vector to later stages in the context.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.generate import Sampling

from vectors.traits.data import load_trait
from vectors.traits.pipeline import TraitConfig, run_traits
from vectors.traits.report import add_traits_sections
from vectors.traits.steering import SweepConfig

from workbench.demo.runner import RunContext

TRAITS = ("sycophantic", "evil", "pirate")

# The demo's budget (≤ 5 minutes for three traits on 2 CPU cores).
DEMO_CONFIG = TraitConfig(
    n_extract_questions=8, n_eval_questions=5, all_instructions=False, n_examples=4,
    sampling=Sampling(max_new_tokens=32, temperature=1.0), sweep_layers=(15,),
    sweep=SweepConfig(layers=(), coefficients=(-0.1, 0.0, 0.05, 0.1, 0.15), n_coherence_questions=3,
                      sampling=Sampling(max_new_tokens=24)),
)
# `workbench demo --quick` (the CI's end-to-end check): every step, a few tokens each.
QUICK_DEMO_CONFIG = TraitConfig(
    n_extract_questions=2, n_eval_questions=2, all_instructions=False, n_examples=2,
    sampling=Sampling(max_new_tokens=12, temperature=1.0), sweep_layers=(15,),
    sweep=SweepConfig(layers=(), coefficients=(-0.1, 0.0, 0.1), n_coherence_questions=1,
                      sampling=Sampling(max_new_tokens=8)),
)


class TraitStage:
    title = "trait vectors"

    def run(self, context: RunContext) -> dict[str, Any]:
        started = time.time()
        result = run_traits(context.model, [load_trait(name) for name in TRAITS], context.out,
                            QUICK_DEMO_CONFIG if context.quick else DEMO_CONFIG, axis=context.axis)
        add_traits_sections(context.report, result)
        context.trait_vectors.update(result.vectors)
        return result.to_summary() | {"seconds": round(time.time() - started, 1)}
