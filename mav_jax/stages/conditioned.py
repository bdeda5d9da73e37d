"""Helpers shared by the stages that condition on pixels (interpolation, super-resolution)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mav_jax.diffusion.frame_motion import translate


def upsample(video: jax.Array, size: int) -> jax.Array:
    """(B, F, h, w, C) -> (B, F, size, size, C), bilinear (the SR stages' conditioning input)."""
    b, f, _, _, c = video.shape
    return jax.image.resize(video, (b, f, size, size, c), method="bilinear")


def frame_noise_problems(
    sampling: float = 0.0, training: float = 0.0, drift: float = 0.0
) -> list[str]:
    """Config problems of the frame noise correlations (each must be in [0, 1]) and of its drift
    (pixels a frame, not negative); a value left out is not checked (0 is valid)."""
    found = [
        f"config.diffusion.{name} must be in [0, 1], got {value}"
        for name, value in (
            ("frame_noise_correlation", sampling),
            ("training_frame_noise_correlation", training),
        )
        if not 0.0 <= value <= 1.0
    ]
    if drift < 0:
        found.append(
            f"config.diffusion.frame_noise_drift is a speed in pixels a frame, so not "
            f"negative; got {drift}"
        )
    return found


def start_problems(strength: float) -> list[str]:
    """Config problems of a sampling start strength (the samplers' `strength`: in (0, 1])."""
    if 0.0 < strength <= 1.0:
        return []
    return [f"config.diffusion.start_strength must be in (0, 1], got {strength}"]


def steady_motion_problems(strength: float) -> list[str]:
    """Config problems of D^t's steady-motion second pass (a fraction of its steps: [0, 1])."""
    if 0.0 <= strength <= 1.0:
        return []
    return [
        f"config.diffusion.steady_motion_strength is the fraction of the sampler's steps the "
        f"second pass runs: in [0, 1] (0: no second pass), got {strength}"
    ]


def initial_noise(
    key: jax.Array,
    shape: tuple[int, ...],
    frame_correlation: float = 0.0,
    shifts: jax.Array | None = None,
) -> jax.Array:
    """x_T of shape (B, F, H, W, C), each frame N(0, I), any two frames correlated by
    `frame_correlation` (the mixed noise of Ge et al. 2023, "Preserve Your Own Correlation"):
    sqrt(c) * one noise shared by the frames + sqrt(1 - c) * noise of each frame's own.
    1 starts every frame from the same noise (the paper's SR_h, so detail it hallucinates stays
    the same from frame to frame); 0 draws the frames independently. `shifts` (B, F, 2), whole
    pixels, translate the shared noise frame by frame (`diffusion.frame_motion`)."""
    if not 0.0 <= frame_correlation <= 1.0:
        raise ValueError(f"frame_correlation must be in [0, 1], got {frame_correlation}")
    b, f, *rest = shape
    shared_key, own_key = jax.random.split(key)
    if shifts is None:
        shared = jnp.broadcast_to(jax.random.normal(shared_key, (b, 1, *rest)), shape)
    else:
        if shifts.shape != (b, f, 2):
            raise ValueError(f"shifts must be (B, F, 2) = {(b, f, 2)}, got {shifts.shape}")
        shared = translate(jax.random.normal(shared_key, (b, *rest)), shifts)
    if frame_correlation == 1.0:
        return shared
    own = jax.random.normal(own_key, shape)
    if frame_correlation == 0.0:
        return own
    return jnp.sqrt(frame_correlation) * shared + jnp.sqrt(1.0 - frame_correlation) * own
