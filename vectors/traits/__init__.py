"""Contrastive trait vectors (the Persona Vectors pipeline): trait artifacts, contrastive responses,
extraction, steering sweeps against random directions, monitoring by projection, data screening."""
