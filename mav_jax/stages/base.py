"""What a cascade stage supplies to the trainer, the plan tool, export and the cascade.

The trainer owns everything else (loop, sharding, optimiser, EMA, checkpoints, metrics), so a stage
is a small frozen dataclass with no training logic of its own. `Stage` is the whole interface its
callers use; optional capabilities (a frozen conditioning network, making videos) are declared
methods with neutral defaults in `StageDefaults`, so no caller probes a stage with `hasattr`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from mav_jax.data.clips import ClipSampling
from mav_jax.diffusion import SAMPLERS, Sampler, get_sampler
from mav_jax.nn import SpatioTemporalUNet, UNetConfig
from mav_jax.stages.sampling import SamplingOptions

Batch = dict[str, Any]


@runtime_checkable
class Stage(Protocol):
    name: str  # one of stages.STAGES
    split: str  # the dataset split it trains on
    resolution: int  # output frame size
    clips: ClipSampling  # how training clips are drawn from a record
    logged_metrics: tuple[str, ...]  # keys of the loss's auxiliary dict the trainer logs
    makes_videos: bool  # whether `sample` makes videos (the trainer writes them)
    factor: int  # output resolution / input resolution (1 unless the stage upsamples)

    @property
    def num_frames(self) -> int:
        """Frames per training clip."""

    def build_model(self, rngs: nnx.Rngs) -> nnx.Module:
        """A fresh model (the trainer calls it inside jit, so parameters are born sharded)."""

    def problems(self) -> list[str]:
        """What is wrong with this stage's settings, in words a user can act on (empty if fine)."""

    def operations(self) -> list:
        """Grain transforms from a dataset record to one numeric training example."""

    def loss(
        self, model: nnx.Module, batch: Batch, key: jax.Array, timesteps: jax.Array | None = None
    ) -> tuple[jax.Array, Any]:
        """Scalar loss of one batch (and auxiliary outputs). `timesteps` (B,) evaluates a
        diffusion stage at those noise levels, deterministically (no condition or network
        dropout); None trains, drawing them."""

    def conditioner(self, mesh: Mesh) -> Callable[[Batch], Batch]:
        """batch -> batch with a frozen network's outputs added, run before each step (outside
        it); the identity for stages without one."""

    def conditioning_shapes(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
        """What `conditioner` adds, as shapes (for planning without the frozen network)."""

    def sample(
        self,
        graphdef: nnx.GraphDef,
        params: nnx.State,
        key: jax.Array,
        count: int,
        num_steps: int,
        batch: Batch,
    ) -> tuple[jax.Array, float]:
        """`count` videos (count, F, H, W, 3) in [-1, 1] and the fps to play them at; stages that
        generate from pixels take their inputs from a training `batch`. Only where
        `makes_videos`."""

    def with_sampling(self, options: SamplingOptions) -> Stage:
        """This stage with the sampling options it reads applied (ValueError on a bad value)."""

    def sampling_problems(self) -> list[str]:
        """What is wrong with the settings sampling options may change."""


class StageDefaults:
    """The neutral defaults of `Stage`'s optional capabilities, and `with_sampling`.

    A stage lists in `sampling_overrides` which `SamplingOptions` it reads, as
    (option name, its own field) pairs; `with_sampling` applies those that are set.
    """

    makes_videos: ClassVar[bool] = False
    factor: ClassVar[int] = 1
    logged_metrics: ClassVar[tuple[str, ...]] = ()
    sampling_overrides: ClassVar[tuple[tuple[str, str], ...]] = ()

    def conditioner(self, mesh: Mesh) -> Callable[[Batch], Batch]:
        del mesh
        return lambda batch: batch

    def conditioning_shapes(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
        del batch_size
        return {}

    def sample(self, graphdef, params, key, count, num_steps, batch):
        raise NotImplementedError(f"The {self.name} stage does not make videos.")

    def with_sampling(self, options: SamplingOptions):
        given = options.given()
        changes = {
            field: given[option] for option, field in self.sampling_overrides if option in given
        }
        if not changes:
            return self
        stage = dataclasses.replace(self, **changes)
        if problems := stage.sampling_problems():
            raise ValueError(f"{self.name}: " + "; ".join(problems) + ".")
        return stage

    def sampling_problems(self) -> list[str]:
        """Problems of the settings `with_sampling` may change (a subset of `problems`, which
        also checks what only training needs, such as the CLIP export to condition on)."""
        return []

    def sample_fn(self) -> Sampler:
        """The sampler `config.diffusion.sampler` names (DDIM or DDPM)."""
        return get_sampler(self.sampler)

    def sampler_problems(self) -> list[str]:
        if self.sampler in SAMPLERS:
            return []
        return [f"config.diffusion.sampler must be one of {sorted(SAMPLERS)}, got '{self.sampler}'"]


class UNetStage(StageDefaults):
    """Base of the stages built on the shared spatio-temporal U-Net (`self.unet`)."""

    unet: UNetConfig

    def build_model(self, rngs: nnx.Rngs) -> SpatioTemporalUNet:
        return SpatioTemporalUNet(self.unet, rngs=rngs)


def present(section, *names: str) -> dict:
    """The entries of a config section that are set, by name: a stage's `from_config` passes them
    on, so a config that predates a field takes the stage dataclass's default (one default)."""
    return {name: section[name] for name in names if name in section}


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
