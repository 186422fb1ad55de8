"""Drift and interventions along a vector: transcripts, per-token projection, drift views, steering
sweeps along the axis, activation capping and replays with and without it."""
