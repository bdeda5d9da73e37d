"""Evaluators the trainer runs every N steps and at the end (big_vision's pattern).

`config.evals` maps a label to one evaluator's settings: `type` (a key of EVALUATORS), `every`
(steps; 0: at the end only) and the type's own fields. Each writes `<label>/<metric>` scalars to
the run's TensorBoard and to `evals.json` in the workdir, which also lets a resumed run skip the
evaluations it already made.
"""

from __future__ import annotations

from mav_jax.train.evaluators.base import (
    EvalContext,
    EvalLog,
    Evaluator,
    heldout_batch,
    with_defaults,
)
from mav_jax.train.evaluators.generated import SampleQuality
from mav_jax.train.evaluators.heldout_loss import HeldoutLoss
from mav_jax.train.evaluators.retrieval import Retrieval

EVALUATORS = {
    "heldout_loss": HeldoutLoss,
    "retrieval": Retrieval,
    "sample_quality": SampleQuality,
}


def evaluator_problems(config) -> list[str]:
    """Config problems of `config.evals`, found before anything is built."""
    found = []
    for label, settings in (config.get("evals") or {}).items():
        kind = settings.get("type")
        if kind not in EVALUATORS:
            found.append(
                f"config.evals.{label}.type must be one of {sorted(EVALUATORS)}, got '{kind}'"
            )
            continue
        found += [f"config.evals.{label}: {p}" for p in EVALUATORS[kind].problems(settings, config)]
    return found


def held_out_counts(config) -> list[int]:
    """Each evaluator's held-out batch size, its defaults included (an unknown type is skipped:
    `evaluator_problems` reports it)."""
    counts = []
    for settings in (config.get("evals") or {}).values():
        if (kind := EVALUATORS.get(settings.get("type"))) is not None:
            counts.append(int(with_defaults(settings, kind.DEFAULTS)[0][kind.COUNT_FIELD]))
    return counts


def make_evaluators(config, context: EvalContext) -> list[Evaluator]:
    """The evaluators `config.evals` names, built on the run's mesh and stage."""
    return [
        EVALUATORS[settings["type"]](label, settings, context)
        for label, settings in sorted((config.get("evals") or {}).items())
    ]


__all__ = [
    "EVALUATORS",
    "EvalContext",
    "EvalLog",
    "Evaluator",
    "HeldoutLoss",
    "Retrieval",
    "SampleQuality",
    "evaluator_problems",
    "heldout_batch",
    "held_out_counts",
    "make_evaluators",
]
