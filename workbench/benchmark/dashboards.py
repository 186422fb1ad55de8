"""Figure 5: feature and vector dashboards on a GemmaScope-width dictionary (131072 features).

Timed through :func:`sae_analysis.dashboards.build_dashboards` (imported lazily: the benchmark is
application layer) for ``n_features`` features (the top ± decoder-cosine features of a random
vector, as a decomposition lists them) over ``n_rows`` shipped-corpus conversations. The
dictionary is a random sae-lens JumpReLU SAE (GemmaScope's architecture) of width 131072 with
d_in = the **shipped model's d_model (576)**, not GemmaScope 27B's 4608: the corpus activations,
logit effects and token strings come from the shipped model, the only one that runs here. The
cost that grows with the width (encoding every corpus token against 131072 features, neighbours
over the whole dictionary) is the one measured; at d_in 4608 the encode costs 8× more.
"""

from __future__ import annotations

import time

import torch


def random_jumprelu_sae(d_in: int, d_sae: int, seed: int = 0):
    """A sae-lens JumpReLU SAE with unit decoder rows, W_enc = W_decᵀ and a threshold of 0.5."""
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig

    generator = torch.Generator().manual_seed(seed)
    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=d_in, d_sae=d_sae))
    decoder = torch.randn(d_sae, d_in, generator=generator)
    decoder /= decoder.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        sae.W_dec.copy_(decoder)
        sae.W_enc.copy_(decoder.T)
        sae.b_enc.zero_(), sae.b_dec.zero_(), sae.threshold.fill_(0.5)
    return sae


@torch.no_grad()
def measure_dashboards(model, n_features: int = 20, n_rows: int = 40, d_sae: int = 131072, layer: int | None = None,
                       progress: bool = True) -> dict:
    """Seconds to build the dashboards of ``n_features`` features and the vector (one run: the
    corpus pass is timed separately, as the decomposition shares it)."""
    from sae_analysis.contexts import token_activations
    from sae_analysis.dashboards import build_dashboards, dashboard_features
    from sae_analysis.decompose import decompose
    from sae_analysis.pipeline import corpus_rows
    from sae_analysis.saes import resolve

    layer = model.cfg.n_layers * 3 // 5 if layer is None else layer
    sae = random_jumprelu_sae(model.cfg.d_model, d_sae)
    spec = resolve("shipped")  # only names the page; the dictionary is the random one
    rows = corpus_rows(model, limit=n_rows)
    started = time.perf_counter()
    acts = token_activations(model, rows, layer, progress=progress)
    forward_s = time.perf_counter() - started
    vector = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    listed = decompose(vector, sae.W_dec, k=n_features // 2)
    features = dashboard_features(listed, None, n_features // 2)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = build_dashboards(model, sae, spec, vector, layer, "random", rows, acts, features,
                              listed.top_positive + listed.top_negative)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"d_sae": d_sae, "d_in": model.cfg.d_model, "n_features": len(result.features), "corpus_rows": len(rows),
            "corpus_tokens": result.n_tokens, "seconds": seconds, "cpu_seconds": cpu_seconds, "corpus_forward_seconds": forward_s,
            "implementation": "sae_analysis.dashboards.build_dashboards on a random sae-lens JumpReLU SAE, "
                              "d_in = the shipped model's d_model"}
