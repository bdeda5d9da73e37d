"""What every evaluator shares: the run it evaluates, a fixed held-out batch, and the log of
evaluations made so far."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any, Protocol

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.data import files
from mav_jax.data.loader import transform_record, video_source
from mav_jax.parallel.sharding import BATCH_AXES, batch_shards
from mav_jax.stages import Stage

EVALS_FILE = "evals.json"  # in the workdir: {step: {metric: value}}


@dataclasses.dataclass(frozen=True)
class EvalContext:
    """The run an evaluator evaluates."""

    stage: Stage
    graphdef: nnx.GraphDef
    mesh: Mesh
    dataset: str
    data_dir: str
    seed: int
    # The stage's conditioner as the trainer built it (a frozen CLIP loads and compiles once).
    condition: Callable[[dict], dict]


class Evaluator(Protocol):
    label: str
    every: int  # steps between evaluations; 0: at the end only

    def evaluate(self, params: nnx.State, step: int) -> dict[str, float]:
        """Metrics of `params` (the EMA weights) at `step`, by name (without the label)."""


def heldout_batch(
    context: EvalContext, split: str, num_examples: int
) -> tuple[dict[str, jax.Array], list[dict[str, Any]]]:
    """The first `num_examples` records of `split` through the stage's transforms, each with a
    generator seeded by (seed, index), so every evaluation and every process sees the same batch:
    (numeric arrays, global and sharded over the batch axes; each example's other fields, such as
    its caption, on the host)."""
    shards = batch_shards(context.mesh)
    if num_examples < 1 or num_examples % shards:
        raise ValueError(
            f"num_examples={num_examples} must be a positive multiple of the mesh's batch "
            f"shards ({shards})"
        )
    try:
        source = video_source(context.dataset, split, context.data_dir)
    except Exception as error:  # noqa: BLE001 -- TFDS raises several types for a missing split
        raise ValueError(
            f"cannot read split '{split}' of {context.dataset}: {error}. Name a split the "
            "dataset has in the evaluator's settings."
        ) from error
    if len(source) < num_examples:
        raise ValueError(
            f"split '{split}' of {context.dataset} has {len(source)} records, fewer than the "
            f"{num_examples} asked"
        )
    operations = context.stage.operations()
    records = [
        transform_record(operations, dict(source[i]), np.random.default_rng([context.seed, i]))
        for i in range(num_examples)
    ]
    numeric = {
        key: np.stack([np.asarray(r[key]) for r in records])
        for key, value in records[0].items()
        if np.asarray(value).dtype.kind in "fiub"
    }
    others = [{k: v for k, v in r.items() if k not in numeric} for r in records]
    sharding = NamedSharding(context.mesh, PartitionSpec(BATCH_AXES))
    placed = {
        key: jax.make_array_from_callback(value.shape, sharding, lambda index, v=value: v[index])
        for key, value in numeric.items()
    }
    return context.condition(placed), others


class EvalLog:
    """Evaluations made so far in a workdir (`evals.json`, written by process 0), so that a resumed
    run does not make an evaluation twice."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, EVALS_FILE)
        self.results: dict[str, dict[str, float]] = {}
        if files.exists(self.path):
            with files.open_file(self.path) as f:
                self.results = json.load(f)

    def done(self, step: int, label: str) -> bool:
        """Whether `label` was evaluated at `step`, as process 0's log says: every process must
        agree, since an evaluation is a collective computation (a workdir on local disks holds
        the log on process 0's host only)."""
        found = any(name.startswith(f"{label}/") for name in self.results.get(str(step), {}))
        if jax.process_count() == 1:
            return found
        return bool(multihost_utils.broadcast_one_to_all(np.asarray(found)))

    def add(self, step: int, metrics: dict[str, float]) -> None:
        self.results.setdefault(str(step), {}).update(metrics)
        if jax.process_index() == 0:
            temporary = self.path + ".tmp"
            with files.open_file(temporary, "w") as f:
                json.dump(self.results, f, indent=1, sort_keys=True)
            files.rename(temporary, self.path)


def with_defaults(settings, defaults: dict) -> tuple[dict, list[str]]:
    """An evaluator's settings (`config.evals.LABEL` without its `type`) over its defaults, and
    the problem of any setting it does not know."""
    values = {k: v for k, v in settings.items() if k != "type"}
    unknown = sorted(set(values) - set(defaults))
    return {**defaults, **values}, [f"unknown setting(s) {unknown}"] if unknown else []
