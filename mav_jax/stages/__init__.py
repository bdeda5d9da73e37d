"""Cascade stages (the `Stage` protocol): how a batch becomes (inputs, conditioning, target),
the stage's loss, and its samples.

`stage_from_config(config)` picks the stage named by `config.stage`.
"""

from __future__ import annotations

from mav_jax.stages.base import Stage, to_uint8
from mav_jax.stages.clip import ClipStage
from mav_jax.stages.interpolation import InterpolationStage
from mav_jax.stages.keyframes import KeyframeStage
from mav_jax.stages.prior import PriorStage
from mav_jax.stages.super_resolution import SuperResolutionStage

STAGES = {
    "clip": ClipStage.from_config,
    "keyframes": KeyframeStage.from_config,
    "prior": PriorStage.from_config,
    "interpolation": InterpolationStage.from_config,
    "sr_low": SuperResolutionStage.from_config,
    "sr_high": SuperResolutionStage.from_config,
}


def stage_from_config(config) -> Stage:
    name = config.get("stage", None)
    if name not in STAGES:
        raise ValueError(
            f"Unknown stage '{name}' (config.stage); stages that train today: {sorted(STAGES)}."
        )
    return STAGES[name](config)


__all__ = [
    "STAGES",
    "ClipStage",
    "InterpolationStage",
    "KeyframeStage",
    "PriorStage",
    "Stage",
    "SuperResolutionStage",
    "stage_from_config",
    "to_uint8",
]
