"""Per-clip augmentation and scaling: the same resize, random crop and flip for every frame of a
clip, uint8 kept until the last step, then [-1, 1] floats for the model."""

from __future__ import annotations

import grain.python as grain
import numpy as np
from PIL import Image


def to_model_range(video_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return video_uint8.astype(np.float32) / 127.5 - 1.0


def resize_shorter_side(video: np.ndarray, size: int) -> np.ndarray:
    """(F, H, W, 3) uint8 -> frames whose shorter side is `size`, aspect kept (PIL's bilinear,
    which averages over the source pixels when it shrinks, so small digits do not alias)."""
    _, height, width, _ = video.shape
    if min(height, width) == size:
        return video
    scale = size / min(height, width)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))  # PIL: (W, H)
    return np.stack(
        [
            np.asarray(Image.fromarray(frame).resize(new_size, Image.Resampling.BILINEAR))
            for frame in video
        ]
    )


class CropFlipScale(grain.RandomMapTransform):
    """A `size` x `size` window of every frame of a clip (the same for all frames), an optional
    horizontal flip (p = 0.5), then values scaled to [-1, 1].

    `fit="resize"` first resizes the shorter side to `size`, so the window sees the whole scene
    (the keyframe, interpolation, CLIP and prior stages: their captions name positions and their
    samples are whole frames). `fit="crop"` takes native-resolution patches, as super-resolution
    trains (its convolutions see no frame edges at sampling), and needs frames of at least `size`.
    """

    def __init__(self, size: int, flip: bool = True, fit: str = "resize"):
        if fit not in ("resize", "crop"):
            raise ValueError(f"fit must be 'resize' or 'crop', got {fit!r}")
        self.size, self.flip, self.fit = size, flip, fit

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        video = element["video"]  # (F, H, W, 3) uint8
        if self.fit == "resize":
            video = resize_shorter_side(video, self.size)
        _, height, width, _ = video.shape
        if height < self.size or width < self.size:
            raise ValueError(
                f"Frames of {height}x{width} are smaller than the crop {self.size}; "
                "super-resolution needs data at least as large as its output."
            )
        top = int(rng.integers(0, height - self.size + 1))
        left = int(rng.integers(0, width - self.size + 1))
        video = video[:, top : top + self.size, left : left + self.size]
        if self.flip and rng.random() < 0.5:
            video = video[:, :, ::-1]
        return {**element, "video": to_model_range(np.ascontiguousarray(video))}
