"""Sparse-autoencoder analysis: SAE loading (GemmaScope via sae-lens, the shipped SmolLM2 SAE),
decomposition of vectors into features, and feature-level against whole-vector steering."""
