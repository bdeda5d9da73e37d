"""Helpers shared by the stages that condition on pixels (interpolation, super-resolution)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def upsample(video: jax.Array, size: int) -> jax.Array:
    """(B, F, h, w, C) -> (B, F, size, size, C), bilinear (the SR stages' conditioning input)."""
    b, f, _, _, c = video.shape
    return jax.image.resize(video, (b, f, size, size, c), method="bilinear")


def initial_noise(key: jax.Array, shape: tuple[int, ...], same_for_all_frames: bool) -> jax.Array:
    """x_T of shape (B, F, H, W, C); with `same_for_all_frames` every frame starts from the same
    noise (the paper's SR_h, so detail it hallucinates stays the same from frame to frame)."""
    if not same_for_all_frames:
        return jax.random.normal(key, shape)
    b, _, *rest = shape
    return jnp.broadcast_to(jax.random.normal(key, (b, 1, *rest)), shape)
