"""What a cascade stage supplies to the one trainer: its model, its data, its loss, its samples.

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
    split: str  # the dataset split it trains on
    num_frames: int  # frames per training clip
    logged_metrics: tuple[str, ...]  # keys of the loss's auxiliary dict the trainer logs

    def build_model(self, rngs: nnx.Rngs) -> nnx.Module:
        """A fresh model (the trainer calls it inside jit, so parameters are born sharded)."""

    def problems(self) -> list[str]:
        """What is wrong with this stage's settings, in words a user can act on (empty if fine)."""

    def operations(self) -> list:
        """Grain transforms from a dataset record to one numeric training example."""

    def loss(self, model: SpatioTemporalUNet, batch: dict, key: jax.Array) -> tuple[jax.Array, Any]:
        """Scalar loss of one batch (and auxiliary outputs)."""

    # Stages that make videos also define (the trainer writes them at `sample_every`):
    # def sample(self, graphdef, params, key, count, num_steps, batch) -> (videos, fps):
    #     `count` videos (count, F, H, W, 3) in [-1, 1] and the fps to play them at; stages that
    #     generate from pixels (interpolation, SR) take their inputs from a training `batch`.


class UNetStage:
    """Mixin of the stages built on the shared spatio-temporal U-Net (`self.unet`)."""

    unet: UNetConfig
    logged_metrics: tuple[str, ...] = ()

    def build_model(self, rngs: nnx.Rngs) -> SpatioTemporalUNet:
        return SpatioTemporalUNet(self.unet, rngs=rngs)


def to_uint8(videos) -> np.ndarray:
    """[-1, 1] floats -> uint8 [0, 255]."""
    return np.clip(np.round((np.asarray(videos, np.float32) + 1.0) * 127.5), 0, 255).astype(
        np.uint8
    )


def resolution_problems(resolution: int, unet: UNetConfig, field: str = "resolution") -> list[str]:
    """The U-Net halves the frame size at each level below the top: the size must survive it.
    `field` names the config.data entry the size came from."""
    if resolution % unet.spatial_factor:
        problem = (
            f"config.data.{field}={resolution} must be divisible by the U-Net's spatial "
            f"factor {unet.spatial_factor} (2 ** (levels - 1))"
        )
        return [problem]
    return []
