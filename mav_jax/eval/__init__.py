"""Evaluation metrics: Fréchet distance, FVD (I3D features and its sources), CLIPSIM."""
