"""TF1-legacy bilinear resize (`tf.compat.v1.image.resize_bilinear`, align_corners=False,
half_pixel_centers=False), the resize the reference FVD code applies before I3D.

Output pixel i samples input coordinate i * (in / out) (no half-pixel offset), interpolating
between floor and floor + 1 (clamped at the last pixel). Written as two small interpolation
matrices applied with einsum, which is exact, jit-friendly and fast on every backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def tf1_interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float32 weights; row i holds the two taps of output pixel i."""
    scale = np.float32(in_size) / np.float32(out_size)  # float32, as TF computes it
    src = np.arange(out_size, dtype=np.float32) * scale
    lower = np.floor(src).astype(np.int64)
    upper = np.minimum(lower + 1, in_size - 1)
    frac = (src - lower).astype(np.float32)
    weights = np.zeros((out_size, in_size), np.float32)
    np.add.at(weights, (np.arange(out_size), lower), 1.0 - frac)
    np.add.at(weights, (np.arange(out_size), upper), frac)
    return weights


def tf1_bilinear_resize(frames: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Resize (..., H, W, C) frames to (..., size[0], size[1], C) in float32."""
    height, width = frames.shape[-3], frames.shape[-2]
    rows = jnp.asarray(tf1_interpolation_matrix(height, size[0]))
    cols = jnp.asarray(tf1_interpolation_matrix(width, size[1]))
    x = frames.astype(jnp.float32)
    hp = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,...hwc->...owc", rows, x, precision=hp)
    return jnp.einsum("pw,...owc->...opc", cols, x, precision=hp)
