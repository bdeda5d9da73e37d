"""What a cascade stage supplies to the one trainer: its U-Net, its data, its loss, its samples.

The trainer owns everything else (loop, sharding, optimiser, EMA, checkpoints, metrics), so a stage
is a small object with no training logic of its own.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import numpy as np
from flax import nnx

from mav_jax.nn import SpatioTemporalUNet, UNetConfig


class Stage(Protocol):
    name: str
    unet: UNetConfig  # the shared U-Net, configured for this stage
    split: str  # the dataset split it trains on
    num_frames: int  # frames per training clip

    def problems(self) -> list[str]:
        """What is wrong with this stage's settings, in words a user can act on (empty if fine)."""

    def operations(self) -> list:
        """Grain transforms from a dataset record to one numeric training example."""

    def loss(self, model: SpatioTemporalUNet, batch: dict, key: jax.Array) -> tuple[jax.Array, Any]:
        """Scalar loss of one batch (and auxiliary outputs)."""

    def sample(self, graphdef: nnx.GraphDef, params: nnx.State, key: jax.Array, count: int,
               num_steps: int, batch: dict) -> tuple[jax.Array, Any]:  # fmt: skip
        """`count` sample videos (count, F, H, W, 3) in [-1, 1] and the fps to play them at; stages
        that generate from pixels (interpolation, SR) take their inputs from a training `batch`."""


def to_uint8(videos) -> np.ndarray:
    """[-1, 1] floats -> uint8 [0, 255]."""
    return np.clip(np.round((np.asarray(videos, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def resolution_problems(resolution: int, unet: UNetConfig) -> list[str]:
    """The U-Net halves the frame size at each level below the top: the size must survive it."""
    if resolution % unet.spatial_factor:
        problem = (
            f"config.data.resolution={resolution} must be divisible by the U-Net's spatial "
            f"factor {unet.spatial_factor} (2 ** (levels - 1))"
        )
        return [problem]
    return []
