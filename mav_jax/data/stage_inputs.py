"""Stage-specific inputs made from a clip: masked keyframes for interpolation, low-res for SR.

(Captions become tokens in `stages.captions`, which knows CLIP's tokenizer.)
"""

from __future__ import annotations

import grain.python as grain
import numpy as np

from mav_jax.data.clips import ClipSampling

SINGLE_FRAME = ClipSampling(num_frames=1, frame_skips=(1,))  # images: one-frame clips


def keyframe_mask(num_frames: int, keyframe_skip: int) -> np.ndarray:
    """(F,) float32: 1 at the keyframes 0, k, 2k, ..., 0 at the frames to generate."""
    if keyframe_skip < 1 or (num_frames - 1) % keyframe_skip:
        raise ValueError(
            f"{num_frames} frames do not hold keyframes every {keyframe_skip} frames from first to "
            f"last: use (K - 1) * {keyframe_skip} + 1 frames."
        )
    mask = np.zeros(num_frames, np.float32)
    mask[::keyframe_skip] = 1.0
    return mask


class MaskForInterpolation(grain.MapTransform):
    """Adds 'masked' (keyframes kept, others zero) and 'mask' (F, 1, 1, 1) for the ↑F stage."""

    def __init__(self, keyframe_skip: int):
        self.keyframe_skip = keyframe_skip

    def map(self, element: dict) -> dict:
        video = element["video"]  # (F, H, W, 3) in [-1, 1]
        mask = keyframe_mask(video.shape[0], self.keyframe_skip)[:, None, None, None]
        return {**element, "masked": video * mask, "mask": mask}


def downsample(video: np.ndarray, factor: int) -> np.ndarray:
    """Box (area) downsampling of (F, H, W, C) by an integer factor."""
    f, h, w, c = video.shape
    if h % factor or w % factor:
        raise ValueError(f"Frames of {h}x{w} cannot be downsampled by {factor}.")
    return video.reshape(f, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


class LowResolution(grain.MapTransform):
    """Adds 'low_res' (F, H/factor, W/factor, 3): the SR stages' input, made from their target."""

    def __init__(self, factor: int):
        self.factor = factor

    def map(self, element: dict) -> dict:
        return {**element, "low_res": downsample(element["video"], self.factor).astype(np.float32)}
