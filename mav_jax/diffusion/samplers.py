"""DDPM ancestral and DDIM samplers, each one jit-compiled `fori_loop` over a strided schedule.

Both take the starting noise `x_T` from the caller (SR_h starts every frame from the same noise)
and a `denoise_fn(params, x_t, t, cond)`; `params` and `cond` are traced pytrees, so one compiled
sampler serves any weights and any prompt batch, sharded however they are.

Both can also hold some frames to given ones (`known`, for ↑F): before every network call those
frames of x_t are set to the forward-noised given frames, sqrt(abar_t) x0 + sqrt(1 - abar_t) x_T,
which is what training shows the network there (it noises the whole clip, given frames too).
Without it the network sees its own trajectory at the given frames and makes the frames between
follow that instead of the given frames.

Both can start part-way (`init`, `strength` < 1; SDEdit, Meng et al. 2022): from a guess of the
sample forward-noised to the step `strength` of the way down the schedule, running only the
remaining steps. ↑F starts the frames between keyframes so, from the keyframes' linear blend, and
the SR stages from the upsampled input.

The SR stages can also hold every step's x0 prediction to their low-resolution input (`low_res`;
`low_res_consistency`): each block of the prediction takes its mean from the input pixel it
downsamples to.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mav_jax.diffusion.guidance import DenoiseFn, guided_output
from mav_jax.diffusion.low_res_consistency import LowResInput, hold_to_low_res
from mav_jax.diffusion.objectives import predict_x0_and_eps
from mav_jax.diffusion.schedules import NoiseSchedule


def sampling_timesteps(num_timesteps: int, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly strided (t, next_t) pairs from T-1 down to 0; next_t = -1 marks the clean sample."""
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"num_steps must be in [1, {num_timesteps}], got {num_steps}.")
    ts = np.round(np.linspace(num_timesteps - 1, 0, num_steps)).astype(np.int32)
    return ts, np.append(ts[1:], -1).astype(np.int32)


def _step_quantities(
    schedule, denoise_fn, params, x, t, cond, prediction, clip_x0, guidance_scale, low_res=None
):
    """Network call at integer step t -> (x0_hat, eps_hat, abar_t), all float32; x0_hat held to
    `low_res` (when given), then clipped, and eps_hat made to agree with it."""
    batch_t = jnp.full((x.shape[0],), t, jnp.int32)
    if guidance_scale is None:
        out = denoise_fn(params, x, batch_t, cond).astype(jnp.float32)
    else:
        out = guided_output(denoise_fn, params, x, batch_t, cond, guidance_scale)
    abar_t = schedule.alphas_cumprod[t]
    alpha, sigma = jnp.sqrt(abar_t), jnp.sqrt(1.0 - abar_t)
    x0, eps = predict_x0_and_eps(prediction, out, x, alpha, sigma)
    if low_res is not None:
        x0 = hold_to_low_res(x0, low_res)
    if clip_x0:
        x0 = jnp.clip(x0, -1.0, 1.0)
    if clip_x0 or low_res is not None:
        eps = (x - alpha * x0) / sigma
    return x0, eps, abar_t


def _abar_next(schedule: NoiseSchedule, s: jax.Array) -> jax.Array:
    return jnp.where(s >= 0, schedule.alphas_cumprod[jnp.maximum(s, 0)], 1.0)


KnownFrames = tuple[jax.Array, jax.Array]  # x0 (B, F, ...) and its mask (B, F): 1 where given


def _hold_known(
    schedule: NoiseSchedule, x: jax.Array, t: jax.Array, x_T: jax.Array, known: KnownFrames | None
) -> jax.Array:
    """x with its given frames replaced by their forward-noised values at step t (see above)."""
    if known is None:
        return x
    x0, mask = known
    abar_t = schedule.alphas_cumprod[t]
    noised = jnp.sqrt(abar_t) * x0.astype(jnp.float32) + jnp.sqrt(1.0 - abar_t) * x_T
    given = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)) > 0  # (B, F, 1, ...)
    return jnp.where(given, noised, x)


def _start(
    schedule: NoiseSchedule, ts: np.ndarray, x_T: jax.Array, init: jax.Array | None, strength: float
) -> tuple[int, jax.Array]:
    """(first step index, x there): x_T from the top, or `init` forward-noised with x_T to the
    step that leaves round(strength * steps) steps to run (at least 1)."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}.")
    first = len(ts) - max(int(round(strength * len(ts))), 1)
    if init is None or first == 0:
        return 0, x_T
    abar = schedule.alphas_cumprod[int(ts[first])]
    return first, jnp.sqrt(abar) * init.astype(jnp.float32) + jnp.sqrt(1.0 - abar) * x_T


@functools.partial(
    jax.jit, static_argnames=("denoise_fn", "num_steps", "prediction", "clip_x0", "strength")
)
def ddim_sample(
    denoise_fn: DenoiseFn,
    params: Any,
    x_T: jax.Array,
    key: jax.Array,
    schedule: NoiseSchedule,
    cond: dict | None = None,
    *,
    num_steps: int = 50,
    eta: float = 0.0,
    prediction: str = "eps",
    clip_x0: bool = True,
    guidance_scale: float | jax.Array | None = None,
    known: KnownFrames | None = None,
    init: jax.Array | None = None,
    strength: float = 1.0,
    low_res: LowResInput | None = None,
) -> jax.Array:
    """DDIM (Song et al. 2021). eta=0 is deterministic; eta=1 matches DDPM's posterior variance."""
    steps = sampling_timesteps(schedule.num_timesteps, num_steps)
    cond = {} if cond is None else cond
    x_T = x_T.astype(jnp.float32)
    first, x_first = _start(schedule, steps[0], x_T, init, strength)
    ts, next_ts = (jnp.asarray(a) for a in steps)

    def body(i, x):
        t, s = ts[i], next_ts[i]
        x = _hold_known(schedule, x, t, x_T, known)
        x0, eps, abar_t = _step_quantities(
            schedule, denoise_fn, params, x, t, cond, prediction, clip_x0, guidance_scale, low_res
        )
        abar_s = _abar_next(schedule, s)
        std = eta * jnp.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))
        direction = jnp.sqrt(jnp.maximum(1 - abar_s - std**2, 0.0))
        noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, jnp.float32)
        return jnp.sqrt(abar_s) * x0 + direction * eps + std * noise

    return jax.lax.fori_loop(first, num_steps, body, x_first)


@functools.partial(
    jax.jit, static_argnames=("denoise_fn", "num_steps", "prediction", "clip_x0", "strength")
)
def ddpm_sample(
    denoise_fn: DenoiseFn,
    params: Any,
    x_T: jax.Array,
    key: jax.Array,
    schedule: NoiseSchedule,
    cond: dict | None = None,
    *,
    num_steps: int | None = None,
    prediction: str = "eps",
    clip_x0: bool = True,
    guidance_scale: float | jax.Array | None = None,
    known: KnownFrames | None = None,
    init: jax.Array | None = None,
    strength: float = 1.0,
    low_res: LowResInput | None = None,
) -> jax.Array:
    """Ancestral sampling from the posterior q(x_s | x_t, x0_hat) (Ho et al. 2020).

    With num_steps < T the steps are strided and each step's beta is 1 - abar_t / abar_s
    (respacing, as in Improved DDPM).
    """
    num_steps = num_steps or schedule.num_timesteps
    steps = sampling_timesteps(schedule.num_timesteps, num_steps)
    cond = {} if cond is None else cond
    x_T = x_T.astype(jnp.float32)
    first, x_first = _start(schedule, steps[0], x_T, init, strength)
    ts, next_ts = (jnp.asarray(a) for a in steps)

    def body(i, x):
        t, s = ts[i], next_ts[i]
        x = _hold_known(schedule, x, t, x_T, known)
        x0, _, abar_t = _step_quantities(
            schedule, denoise_fn, params, x, t, cond, prediction, clip_x0, guidance_scale, low_res
        )
        abar_s = _abar_next(schedule, s)
        beta = 1 - abar_t / abar_s
        mean = (jnp.sqrt(abar_s) * beta / (1 - abar_t)) * x0 + (
            jnp.sqrt(1 - beta) * (1 - abar_s) / (1 - abar_t)
        ) * x
        variance = beta * (1 - abar_s) / (1 - abar_t)
        noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, jnp.float32)
        return mean + jnp.sqrt(variance) * noise

    return jax.lax.fori_loop(first, num_steps, body, x_first)


Sampler = Callable[..., jax.Array]  # ddim_sample's and ddpm_sample's shared signature
SAMPLERS: dict[str, Sampler] = {"ddim": ddim_sample, "ddpm": ddpm_sample}


def get_sampler(name: str) -> Sampler:
    """The sampler `config.diffusion.sampler` names: 'ddim' (deterministic, strided) or 'ddpm'
    (ancestral; strided steps respaced as in Improved DDPM)."""
    if name not in SAMPLERS:
        raise ValueError(f"Unknown sampler '{name}'; choose one of {sorted(SAMPLERS)}.")
    return SAMPLERS[name]
