"""Per-clip augmentation and scaling: the same random crop and flip for every frame of a clip,
uint8 kept until the last step, then [-1, 1] floats for the model."""

from __future__ import annotations

import grain.python as grain
import numpy as np


def to_model_range(video_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return video_uint8.astype(np.float32) / 127.5 - 1.0


class CropFlipScale(grain.RandomMapTransform):
    """Random `size` x `size` crop and horizontal flip (p = 0.5), shared by all frames, then scale."""

    def __init__(self, size: int, flip: bool = True):
        self.size, self.flip = size, flip

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        video = element["video"]  # (F, H, W, 3) uint8
        _, height, width, _ = video.shape
        if height < self.size or width < self.size:
            raise ValueError(f"Frames of {height}x{width} are smaller than the crop {self.size}.")
        top = int(rng.integers(0, height - self.size + 1))
        left = int(rng.integers(0, width - self.size + 1))
        video = video[:, top : top + self.size, left : left + self.size]
        if self.flip and rng.random() < 0.5:
            video = video[:, :, ::-1]
        return {**element, "video": to_model_range(np.ascontiguousarray(video))}
