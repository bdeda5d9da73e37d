"""AdamW with warmup-cosine learning rate and gradient clipping; optionally only the temporal
parameters train (the video phase's "temporal only" option: everything else stays bit-identical)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

from mav_jax.nn import is_temporal_path


def learning_rate_schedule(learning_rate: float, total_steps: int, warmup_steps: int = 0):
    """Linear warmup from 0 to `learning_rate`, then cosine decay to 0 at `total_steps`."""
    return optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(warmup_steps, 1), max(total_steps, warmup_steps + 1)
    )


def trainable_paths(temporal_only: bool) -> Callable[[tuple], bool] | None:
    """Which parameter paths train: every one (None), or only the temporal layers' and the fps
    embedding's. The optimizer freezes the others and the train step does not differentiate them."""
    return is_temporal_path if temporal_only else None


def make_optimizer(
    learning_rate: float,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    clip_norm: float | None = 1.0,
    temporal_only: bool = False,
    params=None,
) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(learning_rate, total_steps, warmup_steps)
    chain = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
    optimizer = optax.chain(*chain, optax.adamw(schedule, weight_decay=weight_decay))
    if not temporal_only:
        return optimizer
    if params is None:
        raise ValueError("temporal_only needs `params` to tell temporal from spatial leaves.")
    trains = trainable_paths(temporal_only)
    labels = jax.tree_util.tree_map_with_path(
        lambda path, _: "train" if trains(path) else "freeze", params
    )
    return optax.multi_transform({"train": optimizer, "freeze": optax.set_to_zero()}, labels)
