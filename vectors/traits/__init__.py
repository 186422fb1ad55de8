"""Contrastive trait vectors (the Persona Vectors pipeline): trait artifacts, contrastive responses,
extraction, steering sweeps against random directions, monitoring by projection, data screening.

Names load on first use (:mod:`workbench.exports`).
"""

from workbench.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "vectors.traits.data": ("BUILTIN_TRAITS", "InstructionPair", "TraitData", "load_trait", "parse_heldout", "save_trait"),
    "vectors.traits.responses": ("PairThresholds", "PromptTemplates", "contrastive_pairs"),
    "vectors.traits.extraction": ("extract_trait_vectors",),
    "vectors.traits.steering": ("SweepConfig", "activation_norm", "choose_setting", "random_direction", "run_sweep",
                                "summarize_layer"),
    "vectors.traits.monitor": ("likelihood_trait_scores", "load_screen_data", "screen"),
    "vectors.traits.authoring": ("generate_trait",),
    "vectors.traits.pipeline": ("Clients", "TraitConfig", "TraitRun", "TraitsResult", "find_assistant_axis", "geometry",
                                "run_traits", "trait_vector_path"),
    "vectors.traits.report": ("add_geometry_section", "add_screen_section", "add_trait_section", "add_traits_sections",
                               "sweep_figure"),
})
