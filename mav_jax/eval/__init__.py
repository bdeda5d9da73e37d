"""Evaluation: Fréchet distance, the FVD feature pipeline and its sources."""
