"""Persona space and the Assistant Axis: personas and questions, persona responses, persona vectors,
PCA of persona space, the axis and its held-out checks, the released Gemma 2 27B vectors.

Geometry helpers are the module :mod:`vectors.axis.space`. Names load on first use.
"""

from workbench.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "vectors.axis.pipeline": ("AxisConfig", "AxisResult", "PAPER_SAMPLING", "axis_path", "persona_vectors", "run_axis",
                              "vector_unit"),
    "vectors.axis.personas": ("Persona", "PersonaSet", "Question", "load_personas", "load_questions", "select_questions"),
    "vectors.axis.responses": ("RoleFilterResult", "filter_by_judge", "judge_role_responses", "plan_items"),
    "vectors.axis.released": ("load_released_vector_folder", "similarity_to_axis"),
    "vectors.axis.report": ("add_axis_sections", "auc_figure", "heatmap_figure", "pca_figure", "sorted_similarity_figure"),
})
