"""Sparse-autoencoder analysis: SAE loading (GemmaScope via sae-lens, the shipped SmolLM2 SAE),
decomposition of vectors into features, feature and vector dashboards, and feature-level against
whole-vector steering with the field's baselines.

Names load on first use (:mod:`workbench.exports`).
"""

from workbench.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "sae_analysis.saes": ("SAESpec", "SHIPPED_DIR", "default_model_name", "known_saes", "load_sae", "resolve", "sae_layer"),
    "sae_analysis.decompose": ("ChanceBaseline", "Decomposition", "FeatureHit", "encoder_attribution"),
    "sae_analysis.feature_steering": ("Baselines", "ComparisonConfig", "compare_steering"),
    "sae_analysis.dashboards": ("Dashboards", "FeatureDashboard", "build_dashboards"),
    "sae_analysis.pipeline": ("SteeringComparison", "VectorDecomposition", "compare_vector", "corpus_rows",
                              "decompose_vector", "run_summary", "vector_for_sae"),
    "sae_analysis.report": ("comparison_figure", "comparison_report", "decomposition_report", "reconstruction_figure"),
    "sae_analysis.dashboard_report": ("dashboard_report",),
    "sae_analysis.runs": ("write_sae_run",),
})
