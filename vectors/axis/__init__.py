"""Persona space and the Assistant Axis: personas and questions, persona responses, persona vectors,
PCA of persona space, the axis and its held-out checks, the released Gemma 2 27B vectors."""
