"""Configuration of the shared spatio-temporal U-Net.

Every cascade stage builds the same `SpatioTemporalUNet`; they differ only in these fields. Stage
configs (`configs/*.py`) hold a `unet` ConfigDict with the same keys; `UNetConfig.from_dict` turns it
into this frozen, validated dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from mav_jax.config_dataclass import from_mapping
from mav_jax.nn.attention_kernels import SPLASH_BLOCK, attention_impl_problems
from mav_jax.nn.remat import normalise_remat, remat_problems

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Shape and conditioning of a `SpatioTemporalUNet`."""

    in_channels: int = 3  # channels of the noisy input video
    out_channels: int = 3  # channels of the prediction (eps or v)
    extra_in_channels: int = 0  # concatenated to the input: 3 for SR (low-res), 4 for interpolation
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (1, 2)  # indices of the levels that have attention blocks
    num_heads: int = 4
    dropout: float = 0.0
    temporal: bool = True  # build temporal layers (False: the image U-Net)
    temporal_kernel_size: int = 3
    timestep_conditioning: bool = True
    fps_conditioning: bool = False
    noise_aug_conditioning: bool = False  # SR stages: the low-res input's noise level
    embedding_dim: int = 0  # global embedding (CLIP image embedding) width; 0 = none
    num_context_tokens: int = 4  # tokens the global embedding is projected to, for cross-attention
    null_embedding: str = "learned"  # classifier-free guidance: "learned" or "zero"
    dtype: str = "float32"  # compute dtype; parameters are always float32
    remat: str = "none"  # what backward keeps of each block: none, full, save_dots, offload
    scan_blocks: bool = False  # run each row of identical blocks as one lax.scan (compile time)
    attention_impl: str = "auto"  # auto, xla, splash (TPU) or cudnn (GPU): nn.attention_kernels
    splash_min_tokens: int = SPLASH_BLOCK  # auto on TPU: splash from this many tokens up

    def __post_init__(self):
        levels = len(self.channel_mults)
        problems = []
        if levels < 1:
            problems.append("channel_mults must name at least one level")
        if any(lvl < 0 or lvl >= levels for lvl in self.attention_levels):
            problems.append(f"attention_levels {self.attention_levels} must be in [0, {levels})")
        widths = [self.base_channels * m for m in self.channel_mults]
        if self.attention_levels and any(w % self.num_heads for w in widths):
            problems.append(
                f"every level width {widths} must be divisible by num_heads={self.num_heads}"
            )
        if self.temporal_kernel_size % 2 == 0:
            problems.append(f"temporal_kernel_size must be odd, got {self.temporal_kernel_size}")
        if self.dtype not in _DTYPES:
            problems.append(f"dtype must be one of {sorted(_DTYPES)}, got '{self.dtype}'")
        problems += attention_impl_problems(self.attention_impl)
        if self.splash_min_tokens < 1:
            problems.append(f"splash_min_tokens must be >= 1, got {self.splash_min_tokens}")
        problems += remat_problems(self.remat)
        object.__setattr__(self, "remat", normalise_remat(self.remat))  # True/False: older configs
        if self.null_embedding not in ("learned", "zero"):
            problems.append(
                f"null_embedding must be 'learned' or 'zero', got '{self.null_embedding}'"
            )
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.embedding_dim < 0 or self.num_context_tokens < 0:
            problems.append("embedding_dim and num_context_tokens must be >= 0")
        if problems:
            raise ValueError("Invalid UNetConfig: " + "; ".join(problems) + ".")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UNetConfig:
        """From a ConfigDict / dict; unknown keys are an error (they are usually typos)."""
        return from_mapping(cls, values, what="U-Net")

    def replace(self, **changes: Any) -> UNetConfig:
        return dataclasses.replace(self, **changes)

    @property
    def compute_dtype(self):
        return _DTYPES[self.dtype]

    @property
    def num_levels(self) -> int:
        return len(self.channel_mults)

    @property
    def spatial_factor(self) -> int:
        """H and W must be divisible by this (one 2x downsampling between levels)."""
        return 2 ** (self.num_levels - 1)

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.base_channels
