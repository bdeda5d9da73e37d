"""Config problems found before anything compiles: each message says what to change."""

from __future__ import annotations

import jax
import tensorflow_datasets as tfds

from mav_jax.data import files
from mav_jax.parallel import make_mesh, rules_from_config
from mav_jax.parallel.compiler_options import parse_compiler_options
from mav_jax.parallel.sharding import batch_shards, context_problems
from mav_jax.train.evaluators import evaluator_problems, held_out_counts


class ConfigError(ValueError):
    """A training config that cannot run; the message lists every problem found."""


def dataset_problems(dataset: str, split: str, data_dir: str | None) -> list[str]:
    import mav_jax.data.moving_digits  # noqa: F401 -- registers the embedded builder

    hint = (
        f"build it first (python -m mav_jax.data.build {dataset.split('/')[0]} "
        f"--data_dir=DIR) and pass --config.data.data_dir=DIR or set TFDS_DATA_DIR"
    )
    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except Exception as error:  # noqa: BLE001 -- TFDS raises several kinds for unknown names
        return [f"dataset '{dataset}' is unknown to TFDS ({type(error).__name__}); {hint}"]
    if not builder.is_prepared():
        return [f"dataset '{dataset}' is not built in {builder.data_dir_root}; {hint}"]
    if split not in builder.info.splits:
        return [f"dataset '{dataset}' has no split '{split}' (it has {list(builder.info.splits)})"]
    return []


def check_config(config, stage) -> None:
    """Raise ConfigError naming every problem of `config` for `stage` on this job's devices."""
    found = list(stage.problems())
    train = config.train
    for name in (
        "num_steps",
        "global_batch_size",
        "grad_accum_steps",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
    ):
        if train[name] < 1:
            found.append(f"config.train.{name} must be >= 1, got {train[name]}")
    try:
        mesh = make_mesh(dict(config.mesh))
    except ValueError as error:
        found.append(f"config.mesh: {error}")
    else:
        found += [f"config.mesh: {p}" for p in context_problems(dict(mesh.shape), stage.num_frames)]
        shards = batch_shards(mesh)
        per_step = shards * max(train.grad_accum_steps, 1)
        if train.global_batch_size % per_step:
            found.append(
                f"config.train.global_batch_size={train.global_batch_size} must be divisible by "
                f"data x fsdp = {shards} times grad_accum_steps={train.grad_accum_steps}"
            )
    if train.global_batch_size % jax.process_count():
        found.append(
            f"config.train.global_batch_size={train.global_batch_size} must be divisible by the "
            f"{jax.process_count()} processes"
        )
    try:
        parse_compiler_options(train.get("tpu_compiler_options", ""))
    except ValueError as error:
        found.append(f"config.train.{error}")
    found += dataset_problems(config.data.dataset, stage.split, config.data.data_dir or None)
    if config.get("init_from") and not files.exists(config.init_from):
        found.append(
            f"config.init_from={config.init_from} does not exist; name the image-phase workdir "
            "or its export"
        )
    try:
        rules_from_config(config)
    except ValueError as error:
        found.append(str(error))
    found += evaluator_problems(config)
    if found:
        raise ConfigError("The training config cannot run:\n  - " + "\n  - ".join(found))


def batches_split_over_devices(config) -> list[int] | None:
    """Every batch a run splits over the mesh's batch axes: the micro-batch, and each evaluator's
    held-out examples (their counts decide how many host devices a CPU run can use). None where
    the mesh fixes the device count: no axis is -1, or another axis is above 1."""
    sizes = {k: int(v) for k, v in dict(config.mesh).items() if k != "num_slices"}
    if -1 not in sizes.values() or any(v > 1 for v in sizes.values()):
        return None
    train = config.train
    return [train.global_batch_size // max(train.grad_accum_steps, 1), *held_out_counts(config)]
