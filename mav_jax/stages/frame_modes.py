"""Which frames the interpolation stage is given: its three training tasks, as in the paper.

- interpolate: keyframes 0, k, 2k, ... are known; the frames between them are generated.
- extrapolate: the first half of the clip is known; the rest continues it.
- animate: only the first frame is known (image animation).
"""

from __future__ import annotations

import grain.python as grain
import numpy as np

from mav_jax.data.stage_inputs import keyframe_mask

MODES = ("interpolate", "extrapolate", "animate")


def frame_mask(mode: str, num_frames: int, keyframe_skip: int) -> np.ndarray:
    """(F,) float32, 1 where the frame is given."""
    if mode == "interpolate":
        return keyframe_mask(num_frames, keyframe_skip)
    mask = np.zeros(num_frames, np.float32)
    if mode == "extrapolate":
        mask[: (num_frames + 1) // 2] = 1.0
    elif mode == "animate":
        mask[0] = 1.0
    else:
        raise ValueError(f"Unknown frame mode '{mode}'; choose one of {MODES}.")
    return mask


def spread_keyframes(keyframes: np.ndarray, keyframe_skip: int) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes (N, K, H, W, C) -> (video, mask): the video (N, (K - 1) * skip + 1, H, W, C)
    float32 has them `keyframe_skip` apart and zeros between; the mask (F,) marks them given."""
    keyframes = np.asarray(keyframes, np.float32)
    n, k = keyframes.shape[:2]
    frames = (k - 1) * keyframe_skip + 1
    video = np.zeros((n, frames, *keyframes.shape[2:]), np.float32)
    video[:, ::keyframe_skip] = keyframes
    return video, frame_mask("interpolate", frames, keyframe_skip)


class RandomFrameMask(grain.RandomMapTransform):
    """Adds 'mask' (F,): a mode drawn with `weights` (interpolate, extrapolate, animate)."""

    def __init__(self, keyframe_skip: int, weights: tuple[float, float, float]):
        if len(weights) != len(MODES) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"mode weights must be 3 non-negative numbers for {MODES}.")
        self.keyframe_skip = keyframe_skip
        self.probabilities = np.asarray(weights, np.float64) / sum(weights)

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        mode = MODES[int(rng.choice(len(MODES), p=self.probabilities))]
        mask = frame_mask(mode, element["video"].shape[0], self.keyframe_skip)
        return {**element, "mask": mask}
