"""Figure 4: decomposition of one vector against a GemmaScope-27B-sized decoder (131072 × 4608).

Timed through the project's own :mod:`sae_analysis.decompose` (imported lazily: the benchmark is
application layer): ``decompose`` is what a user runs (decoder-cosine top-k of both signs, a
100-direction chance baseline sharing the same pass over the decoder, a reconstruction curve);
``decoder_cosines`` + ``top_features`` is the bare cosine top-k of one vector, for comparison.
The decoder is random (2.4 GB in fp32): the cost depends only on its shape.
"""

from __future__ import annotations

import torch

from workbench.benchmark.measure import interleaved


def measure_decomposition(d_sae: int, d_model: int, k: int, repeats: int, progress: bool = True) -> dict:
    """Time of the full decomposition and of the bare cosine top-k of one vector."""
    from sae_analysis.decompose import decompose, decoder_cosines, top_features

    generator = torch.Generator().manual_seed(0)
    decoder = torch.randn(d_sae, d_model, generator=generator)
    vector = torch.randn(d_model, generator=generator)
    with torch.inference_mode():
        timings = interleaved(
            {
                "decompose": lambda: decompose(vector, decoder, k=k),
                "cosine_top_k_only": lambda: top_features(decoder_cosines(vector, decoder), k),
            },
            repeats, "bench decomposition", progress,
        )
    return {
        "decoder_shape": [d_sae, d_model],
        "decoder_gib": d_sae * d_model * 4 / 2**30,
        "top_k": k,
        "implementation": "sae_analysis.decompose.decompose (cosine top-k ± , 100-draw chance baseline, "
                          "reconstruction curve); cosine_top_k_only = decoder_cosines + top_features",
        "timings": {name: t.to_json() for name, t in timings.items()},
    }
