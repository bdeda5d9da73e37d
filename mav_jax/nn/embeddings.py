"""Sinusoidal features and the MLPs that turn scalars (timestep, fps, noise level) into embeddings."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.nn.layers import Dtype, dense
from mav_jax.parallel import logical_axes as ax


def sinusoidal_embedding(values: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
    """Transformer-style features of scalars: (N,) -> (N, dim), float32."""
    if dim % 2:
        raise ValueError(f"Sinusoidal embedding dim must be even, got {dim}.")
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(values, jnp.float32)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


def frame_position_encoding(num_frames: int, dim: int) -> jax.Array:
    """Fixed sinusoidal encoding of frame index, (F, dim): lets temporal attention tell order."""
    return sinusoidal_embedding(jnp.arange(num_frames), dim)


class ScalarEmbedding(nnx.Module):
    """sinusoid(value) -> Linear -> SiLU -> Linear, as for diffusion timesteps.

    `zero_init=True` zeroes the last layer so a newly added condition (fps when a video model is
    made from an image model) changes nothing until it is trained.
    """

    def __init__(
        self,
        features: int,
        out_features: int,
        *,
        zero_init: bool = False,
        dtype: Dtype = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.features = features
        self.hidden = dense(features, out_features, axes=(ax.EMBED, ax.MLP), dtype=dtype, rngs=rngs)
        self.out = dense(
            out_features,
            out_features,
            axes=(ax.MLP, ax.EMBED),
            zero_init=zero_init,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, values: jax.Array) -> jax.Array:  # (B,) -> (B, out_features)
        return self.out(jax.nn.silu(self.hidden(sinusoidal_embedding(values, self.features))))
