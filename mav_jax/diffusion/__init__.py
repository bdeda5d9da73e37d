"""Diffusion maths: noise schedules, objectives, samplers and classifier-free guidance."""

from mav_jax.diffusion.guidance import condition_keep_mask, guided_output
from mav_jax.diffusion.objectives import (
    PREDICTIONS,
    diffusion_loss,
    predict_x0_and_eps,
    prediction_target,
)
from mav_jax.diffusion.samplers import (
    SAMPLERS,
    Sampler,
    ddim_sample,
    ddpm_sample,
    get_sampler,
    sampling_timesteps,
)
from mav_jax.diffusion.schedules import (
    NoiseSchedule,
    cosine_schedule,
    linear_schedule,
    make_schedule,
    q_sample,
)

__all__ = [
    "PREDICTIONS",
    "NoiseSchedule",
    "condition_keep_mask",
    "cosine_schedule",
    "SAMPLERS",
    "Sampler",
    "ddim_sample",
    "ddpm_sample",
    "get_sampler",
    "diffusion_loss",
    "guided_output",
    "linear_schedule",
    "make_schedule",
    "predict_x0_and_eps",
    "prediction_target",
    "q_sample",
    "sampling_timesteps",
]
