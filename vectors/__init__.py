"""Persona space and trait vectors: personas and the Assistant Axis, contrastive trait vectors,
per-token projection and drift, steering and activation capping. Builds on :mod:`workbench`."""
