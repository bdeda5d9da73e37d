"""Data: TFDS builders (the embedded Moving Digits set, user video and image collections), video
and file I/O, and the Grain input pipelines and per-stage transforms every stage shares."""
