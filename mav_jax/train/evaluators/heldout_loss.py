"""Held-out diffusion loss at fixed noise levels (as MaxDiffusion and MLPerf's Stable Diffusion
benchmark evaluate): the same examples, noise and timesteps at every evaluation, with no
condition or network dropout, so the numbers move only when the weights do."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from mav_jax.train.evaluators.base import EvalContext, heldout_batch, with_defaults

DEFAULTS = {
    "every": 0,
    "split": "eval",
    "num_examples": 8,
    "timestep_fractions": (0.1, 0.5, 0.9),  # of the schedule's T: low, middle and high noise
}


def fixed_timesteps(fractions, num_timesteps: int) -> list[int]:
    return [min(int(round(f * num_timesteps)), num_timesteps - 1) for f in fractions]


class HeldoutLoss:
    """Metrics `t=<t>` (the batch's mean loss at that timestep) and `mean` (over them)."""

    DEFAULTS: ClassVar[dict] = DEFAULTS
    COUNT_FIELD: ClassVar[str] = "num_examples"  # held-out examples split over the batch axes

    @staticmethod
    def problems(settings, config) -> list[str]:
        values, found = with_defaults(settings, DEFAULTS)
        if config.get("stage") == "clip":
            found.append("the clip stage has no diffusion loss; evaluate it with retrieval")
        if not all(0.0 <= f < 1.0 for f in values["timestep_fractions"]):
            found.append(
                f"timestep_fractions are fractions of the schedule in [0, 1), got "
                f"{tuple(values['timestep_fractions'])}"
            )
        return found

    def __init__(self, label: str, settings, context: EvalContext):
        values, _ = with_defaults(settings, DEFAULTS)
        self.label, self.every = label, int(values["every"])
        stage = context.stage
        self.timesteps = fixed_timesteps(values["timestep_fractions"], stage.schedule.num_timesteps)
        self.batch, _ = heldout_batch(context, values["split"], int(values[self.COUNT_FIELD]))
        size = next(iter(self.batch.values())).shape[0]
        # The noise (and any other draw the loss makes), the same at every evaluation.
        self.key = key = jax.random.fold_in(jax.random.key(context.seed), 0x4E5A1)
        graphdef, timesteps = context.graphdef, self.timesteps

        def losses(params, batch):
            model = nnx.merge(graphdef, params)
            return jnp.stack(
                [
                    stage.loss(model, batch, key, timesteps=jnp.full((size,), t, jnp.int32))[0]
                    for t in timesteps
                ]
            )

        replicated = NamedSharding(context.mesh, PartitionSpec())
        self._losses = jax.jit(losses, out_shardings=replicated)

    def evaluate(self, params: nnx.State, step: int) -> dict[str, float]:
        del step
        values = np.asarray(jax.device_get(self._losses(params, self.batch)), np.float64)
        return {
            **{f"t={t}": float(v) for t, v in zip(self.timesteps, values, strict=True)},
            "mean": float(values.mean()),
        }
