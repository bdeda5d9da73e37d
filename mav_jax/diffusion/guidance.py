"""Classifier-free guidance (Ho & Salimans 2022).

Training drops the condition for a fraction of examples (the U-Net swaps in its null embedding
where `embedding_mask` is False); sampling runs the conditional and unconditional passes as one
batch and extrapolates: out = uncond + scale * (cond - uncond).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

# denoise_fn(params, x_t, t, cond) -> network output; `cond` is a dict of conditioning arrays
# with batch first, and may hold "embedding_mask" (B,) bool.
DenoiseFn = Callable[[Any, jax.Array, jax.Array, dict], jax.Array]
MASK_KEY = "embedding_mask"


def condition_keep_mask(key: jax.Array, batch_size: int, drop_rate: float) -> jax.Array:
    """(B,) bool: False for the examples whose condition is dropped at training."""
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"Condition drop rate must be in [0, 1), got {drop_rate}.")
    return jax.random.uniform(key, (batch_size,)) >= drop_rate


def guided_output(
    denoise_fn: DenoiseFn, params: Any, x_t: jax.Array, t: jax.Array, cond: dict, scale
) -> jax.Array:
    """uncond + scale * (cond - uncond), both passes in one doubled batch."""
    batch = x_t.shape[0]
    doubled = jax.tree.map(lambda a: jnp.concatenate([a, a], axis=0), dict(cond))
    keep = (
        jnp.ones((batch,), bool)
        if cond.get(MASK_KEY) is None
        else jnp.asarray(cond[MASK_KEY], bool)
    )
    doubled[MASK_KEY] = jnp.concatenate([keep, jnp.zeros((batch,), bool)])
    out = denoise_fn(params, jnp.concatenate([x_t, x_t]), jnp.concatenate([t, t]), doubled)
    out = out.astype(jnp.float32)
    conditional, unconditional = out[:batch], out[batch:]
    return unconditional + jnp.asarray(scale, jnp.float32) * (conditional - unconditional)
