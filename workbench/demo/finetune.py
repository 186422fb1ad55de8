"""The demo's fine-tuning stage: pirate data at mixing levels, the finetuning shift against the
trait metric with its random-direction null, and plain / preventative / CAFT / inference-time
steering side by side (:mod:`vectors.traits.finetune`).

Uses the pirate response vector the trait stage put in the context. Sizes: 20 training questions at
0/50/100% pirate, 10 LoRA steps at lr 1e-4 (two epochs: more memorises the set and lowers every trait
example's likelihood; rank 8, layers ≥ 12, batch 4, ≤ 64 tokens), all 8 held-out examples,
preventative α 0.5, CAFT at every adapted layer (at one layer it barely helps), inference-time
steering −0.25, layer 15; 165 s on an idle 2-core machine (``docs/finetune.md``) (``--quick``: 2
questions, 0/100%, 2 steps on layers ≥ 14; about 85 s here).
"""

from __future__ import annotations

import time
from typing import Any

from workbench.errors import WorkbenchError
from workbench.generate import Sampling
from workbench.train import LoraConfig

from vectors.traits.data import load_trait
from vectors.traits.finetune import FinetuneConfig, FinetuneRun
from vectors.traits.finetune_report import add_finetune_sections

from workbench.demo.runner import RunContext

TRAIT = "pirate"

SHIPPED_N_LAYERS = 30  # CAFT ablates at every adapted layer: from the LoRA's first layer to the last
_DEMO_LORA = LoraConfig(rank=8, alpha=16, first_layer=12, steps=10, batch_size=4, max_tokens=64, learning_rate=1e-4)
_QUICK_LORA = LoraConfig(rank=4, alpha=8, first_layer=14, steps=2, batch_size=2, max_tokens=40, learning_rate=1e-3)

DEMO_CONFIG = FinetuneConfig(
    levels=(0, 50, 100), layer=15, n_train_questions=20, n_eval_questions=4, n_examples=None, prevent_coefs=(0.5,),
    ablate=True, ablate_layers=tuple(range(_DEMO_LORA.first_layer, SHIPPED_N_LAYERS)), inference_coefs=(0.25,),
    n_random=100, sampling=Sampling(max_new_tokens=32, temperature=1.0), eval_sampling=Sampling(max_new_tokens=24),
    lora=_DEMO_LORA,
)
QUICK_DEMO_CONFIG = FinetuneConfig(
    levels=(0, 100), layer=15, n_train_questions=2, n_eval_questions=2, n_examples=2, prevent_coefs=(0.5,),
    ablate=True, ablate_layers=tuple(range(_QUICK_LORA.first_layer, SHIPPED_N_LAYERS)), inference_coefs=(0.25,),
    n_random=20, sampling=Sampling(max_new_tokens=12, temperature=1.0), eval_sampling=Sampling(max_new_tokens=8),
    lora=_QUICK_LORA,
)


class FinetuneStage:
    title = "fine-tuning"

    def run(self, context: RunContext) -> dict[str, Any]:
        started = time.time()
        vector = context.trait_vectors.get(TRAIT)
        if vector is None:
            raise WorkbenchError(f"demo stage '{self.title}' needs the {TRAIT} vector: run the trait stage before it")
        config = QUICK_DEMO_CONFIG if context.quick else DEMO_CONFIG
        study = FinetuneRun(context.model, load_trait(TRAIT), vector, context.out / "finetune", config).run()
        summary = study.to_summary()
        add_finetune_sections(context.report, summary)
        return {"finetune": summary | {"seconds": round(time.time() - started, 1)}}
