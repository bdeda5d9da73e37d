"""Datasets (TFDS builders) and, to come, the input pipelines every stage shares."""
