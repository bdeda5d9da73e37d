"""Holding a super-resolution sample to its low-resolution input (range-null-space projection).

The SR stages are trained on targets whose box (area) downsampling is their input
(`data.stage_inputs.downsample`), so a faithful upscale must average back to the input, block by
block. A tiny SR U-Net does not quite: its samples drift in colour and invent off-colour speckle
at the scale of an input pixel (bench/sr_quality.py's colour error). DDNM (Wang et al. 2023,
"Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model") fixes the part of the
sample the input determines: with A the box downsampling and A+ its pseudo-inverse (repeat each
pixel into its block), x0 <- x0 + A+(y - A x0) keeps what the network drew inside each block
(the null space of A: detail, edges) and takes each block's mean from the input y. Applied to the
sampler's x0 prediction at every step (`samplers`' `low_res`), the network then harmonises the
rest of the image around the corrected block means on the following steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# (y, weight): the low-resolution input (B, F, h, w, C) and how much of the correction to apply
# (1: each block's mean is the input's exactly; 0: none).
LowResInput = tuple[jax.Array, jax.Array | float]


def block_means(x: jax.Array, factor: int) -> jax.Array:
    """(B, F, H, W, C) -> (B, F, H/factor, W/factor, C): box downsampling, as the SR data is made."""
    b, f, h, w, c = x.shape
    return x.reshape(b, f, h // factor, factor, w // factor, factor, c).mean(axis=(3, 5))


def hold_to_low_res(x0: jax.Array, low_res: LowResInput) -> jax.Array:
    """x0 (B, F, H, W, C) with each factor x factor block's mean moved `weight` of the way to the
    input pixel it downsamples to; H / h is the factor."""
    y, weight = low_res
    b, f, h, w, c = x0.shape
    factor = h // y.shape[2]
    if y.shape != (b, f, h // factor, w // factor, c) or h % y.shape[2]:
        raise ValueError(
            f"the low-res input {y.shape} does not downsample the sample {x0.shape} "
            f"by a whole factor"
        )
    gap = jnp.asarray(weight, jnp.float32) * (y.astype(jnp.float32) - block_means(x0, factor))
    gap = jnp.repeat(jnp.repeat(gap, factor, axis=2), factor, axis=3)  # A+: each pixel to its block
    return x0 + gap
