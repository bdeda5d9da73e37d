"""Discrete-time noise schedules and the forward (noising) process.

Timesteps are integers t in [0, T); x_t = alpha_t * x0 + sigma_t * eps with
alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), and t = 0 the least noisy step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class NoiseSchedule:
    """Cumulative signal fractions abar_t, (T,) float32; a pytree, so it can enter jit."""

    alphas_cumprod: jax.Array

    @property
    def num_timesteps(self) -> int:
        return self.alphas_cumprod.shape[0]

    def alpha_sigma(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(alpha_t, sigma_t) for integer timesteps t of any shape."""
        abar = self.alphas_cumprod[jnp.asarray(t, jnp.int32)]
        return jnp.sqrt(abar), jnp.sqrt(1.0 - abar)


def _from_betas(betas: np.ndarray) -> NoiseSchedule:
    return NoiseSchedule(jnp.asarray(np.cumprod(1.0 - betas), jnp.float32))


def linear_schedule(
    num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> NoiseSchedule:
    """DDPM's linear betas (Ho et al. 2020), rescaled so any T spans the same noise range."""
    scale = 1000.0 / num_timesteps
    return _from_betas(
        np.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=np.float64)
    )


def cosine_schedule(num_timesteps: int = 1000, offset: float = 0.008) -> NoiseSchedule:
    """Improved-DDPM cosine schedule (Nichol & Dhariwal 2021), betas clipped at 0.999."""
    steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
    f = np.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], 0.999)
    return _from_betas(betas)


SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule}


def make_schedule(name: str, num_timesteps: int = 1000) -> NoiseSchedule:
    if name not in SCHEDULES:
        raise ValueError(f"Unknown noise schedule '{name}'; choose one of {sorted(SCHEDULES)}.")
    if num_timesteps < 2:
        raise ValueError(f"num_timesteps must be >= 2, got {num_timesteps}.")
    return SCHEDULES[name](num_timesteps)


def broadcast_to_rank(values: jax.Array, rank: int) -> jax.Array:
    """(B,) -> (B, 1, ..., 1) with `rank` dims, to scale a batch of tensors per example."""
    return values.reshape(values.shape + (1,) * (rank - values.ndim))


def q_sample(schedule: NoiseSchedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """Forward process: x_t = alpha_t x0 + sigma_t eps, per example t of shape (B,)."""
    alpha, sigma = schedule.alpha_sigma(t)
    alpha, sigma = broadcast_to_rank(alpha, x0.ndim), broadcast_to_rank(sigma, x0.ndim)
    return alpha * x0 + sigma * noise
