"""The one training loop every cascade stage uses.

`train_and_evaluate(config, workdir)` checks the config, builds the mesh, the stage's model and
data, resumes from the newest checkpoint in `workdir` (or initialises, optionally from another
run's weights), then trains with periodic metrics, checkpoints and sample videos. SIGTERM (or a
TPU preemption notice) saves a checkpoint and returns; the same command resumes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.data import files
from mav_jax.data.loader import (
    PREFETCH_BUFFER_SIZE,
    READ_THREADS,
    global_batch,
    make_loader,
    video_source,
)
from mav_jax.data.video_io import tile_videos, write_gif, write_mp4
from mav_jax.parallel import make_mesh, rules_from_config
from mav_jax.parallel.compiler_options import step_compiler_options
from mav_jax.parallel.mesh_context import use_mesh
from mav_jax.stages import Stage, stage_from_config, to_uint8
from mav_jax.train.checkpoints import Checkpointer, abstract_like
from mav_jax.train.config_checks import ConfigError, check_config
from mav_jax.train.evaluators import EvalContext, EvalLog, make_evaluators
from mav_jax.train.metrics import TrainingMonitor, flops_per_device
from mav_jax.train.model_flops import peak_flops, train_step_model_flops
from mav_jax.train.optimizer import learning_rate_schedule
from mav_jax.train.step import TrainState, train_step_from_config
from mav_jax.train.weights import CHECKPOINTS, build_train_state, initialize_from

log = logging.getLogger(__name__)

# Config fields that fix the model's shape: a workdir cannot resume under different ones.
MODEL_FIELDS = ("stage", "phase", "unet", "clip", "prior")  # the ones a config has


class _StopSignal:
    """Turns SIGTERM into a flag the loop checks between steps (single-process jobs).

    Multi-process jobs leave SIGTERM to JAX's preemption notifier instead, and agree on the step to
    stop at through Orbax's `reached_preemption`, so every host saves the same step.
    """

    def __init__(self):
        self.received = False
        self.previous = None
        if jax.process_count() == 1:
            self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        self.received = True

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _check_same_model(saved: dict, config) -> None:
    current = json.loads(config.to_json())
    changed = [k for k in MODEL_FIELDS if saved.get(k) != current.get(k)]
    if changed:
        raise ConfigError(
            f"The workdir holds a run whose {changed} differ from this config; resume with the "
            "original config or start a new --workdir."
        )


def _restore(ckpt: Checkpointer, state: TrainState, config):
    """The newest readable checkpoint, or None in a fresh workdir. Refuses to go on when the
    workdir holds another model, or only damaged checkpoints (training over them would lose them).
    """
    steps = ckpt.manager.all_steps()
    if not steps:
        return None
    try:
        saved_config = ckpt.restore_config(max(steps))
    except Exception:  # noqa: BLE001 -- a damaged newest checkpoint: restore_latest reports it
        saved_config = None
    if saved_config is not None:
        _check_same_model(saved_config, config)
    restored = ckpt.restore_latest(abstract_like(state))
    if restored is None:
        raise ConfigError(
            f"Every checkpoint in {ckpt.manager.directory} is damaged ({ckpt.damaged}); move them "
            "away to start this run afresh."
        )
    return restored


def _data_source(config, stage: Stage):
    return video_source(config.data.dataset, stage.split, config.data.data_dir)


def make_sampler(stage: Stage, graphdef, mesh: Mesh, count: int, num_steps: int):
    """One jitted `sampler(params, key_data, batch) -> (videos, fps)`, compiled at its first call
    and reused at every later sample point."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def sample(params, key_data, batch):
        key = jax.random.wrap_key_data(key_data)
        videos, fps = stage.sample(graphdef, params, key, count, num_steps, batch)
        return videos, jnp.asarray(fps, jnp.float32).reshape(())

    return jax.jit(sample, out_shardings=replicated)


def write_samples(sampler, params, mesh: Mesh, key, batch: dict, path_prefix: str) -> np.ndarray:
    """Sample videos from `params` on the mesh (stages that need inputs take them from `batch`);
    process 0 writes them side by side as GIF and MP4."""
    replicated = NamedSharding(mesh, PartitionSpec())
    # Host numpy, identical on every process, is the one form all processes can place globally.
    key_data = jax.device_put(np.asarray(jax.random.key_data(key)), replicated)
    videos, fps = sampler(params, key_data, batch)
    videos = to_uint8(videos.addressable_data(0))  # (N, F, H, W, 3)
    fps = float(fps.addressable_data(0))
    if jax.process_index() == 0:
        frames = tile_videos(videos)
        write_gif(path_prefix + ".gif", frames, fps)
        write_mp4(path_prefix + ".mp4", frames, fps)
    return videos


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Train `config.stage` in `workdir`, resuming from its newest checkpoint; returns the state."""
    stage = stage_from_config(config)
    check_config(config, stage)
    mesh = make_mesh(dict(config.mesh))
    # Kernels that cannot be partitioned automatically (splash attention) run per shard of it.
    with use_mesh(mesh, rules_from_config(config)):
        return _train_and_evaluate(config, workdir, stage, mesh)


def _train_and_evaluate(config, workdir: str, stage, mesh) -> TrainState:
    train = config.train
    files.make_dirs(workdir)
    if jax.process_index() == 0:
        log.info(
            "Mesh %s, %d processes, stage %s", dict(mesh.shape), jax.process_count(), stage.name
        )

    graphdef, state, optimizer = build_train_state(config, stage, mesh)
    ckpt = Checkpointer(
        os.path.join(workdir, CHECKPOINTS),
        max_to_keep=train.keep_checkpoints,
        save_interval_steps=train.checkpoint_every,
    )
    loader = make_loader(
        _data_source(config, stage),
        stage.operations(),
        batch_size=train.global_batch_size // jax.process_count(),
        seed=config.seed,
        worker_count=config.data.worker_count,
        read_threads=config.data.get("read_threads", READ_THREADS),
        prefetch_buffer_size=config.data.get("prefetch_buffer_size", PREFETCH_BUFFER_SIZE),
    )
    iterator = iter(loader)
    restored = _restore(ckpt, state, config)
    if restored is not None:
        start, state, data_state, _ = restored
        iterator.set_state(data_state["iterator"].encode())
        log.info("Resumed from step %d in %s", start, workdir)
    else:
        start = 0
        if config.get("init_from"):
            params = initialize_from(config.init_from, graphdef, state.params, mesh)
            state = state.replace(params=params, ema=jax.tree.map(lambda x: x.copy(), params))
            log.info("Initialised from %s", config.init_from)

    # Stages conditioned on a frozen network (CLIP) add its outputs to each batch, outside the step.
    condition = stage.conditioner(mesh)

    def next_batch():
        return condition(global_batch(next(iterator), mesh))

    batch = next_batch()
    step_fn = train_step_from_config(config, graphdef, stage, optimizer, mesh, state, batch)
    compiled = step_fn.lower(state, batch).compile(step_compiler_options(config, mesh))
    schedule = learning_rate_schedule(train.learning_rate, train.num_steps, train.warmup_steps)
    model_flops = train_step_model_flops(stage, graphdef, state.params, batch) / mesh.size
    monitor = TrainingMonitor(
        workdir,
        train.num_steps,
        start,
        train.global_batch_size,
        flops_per_device(compiled),
        model_flops=model_flops,
        peak_flops=peak_flops(),
    )
    stop = _StopSignal()
    config_record = json.loads(config.to_json())
    sample_key = jax.random.key(config.seed + 1)
    makes_videos = stage.makes_videos and train.num_samples > 0
    if makes_videos:
        sampler = make_sampler(
            stage,
            graphdef,
            mesh,
            min(train.num_samples, train.global_batch_size),
            train.sample_steps,
        )

    def save(step: int) -> None:
        data_state = {"iterator": iterator.get_state().decode()}
        ckpt.save(step, state, data_state, config_record, force=True)

    context = EvalContext(
        stage, graphdef, mesh, config.data.dataset, config.data.data_dir, config.seed, condition
    )
    evaluators, eval_log = make_evaluators(config, context), EvalLog(workdir)

    def evaluate(step: int, final: bool = False) -> None:
        """Each evaluator due at `step` (every N steps, and at the end) that has not already
        evaluated it (a resumed run skips what the interrupted one finished)."""
        began = time.perf_counter()
        for evaluator in evaluators:
            due = final or (evaluator.every and step % evaluator.every == 0)
            if not due or eval_log.done(step, evaluator.label):
                continue
            metrics = evaluator.evaluate(state.ema, step)
            scalars = {f"{evaluator.label}/{name}": value for name, value in metrics.items()}
            eval_log.add(step, scalars)
            monitor.write(step, scalars)
            log.info("Step %d %s", step, scalars)
        monitor.exclude(time.perf_counter() - began)

    def samples(step: int) -> None:
        if not makes_videos:
            return
        began = time.perf_counter()
        write_samples(
            sampler,
            state.ema,
            mesh,
            jax.random.fold_in(sample_key, step),
            batch,
            os.path.join(workdir, "samples", f"step_{step:08d}"),
        )
        monitor.exclude(time.perf_counter() - began)

    step, interrupted = start, False
    try:
        if makes_videos and jax.process_index() == 0:
            files.make_dirs(os.path.join(workdir, "samples"))
        while step < train.num_steps:
            state, metrics = compiled(state, batch)
            step += 1
            monitor.record(metrics)
            if step % train.log_every == 0 or step == train.num_steps:
                monitor.report(step, schedule(step - 1))
            if stop.received or ckpt.manager.reached_preemption(step):
                interrupted = True
                break
            if step < train.num_steps:
                evaluate(step)
                # Saved before the next batch is read: a resumed run reads exactly that batch next.
                if step % train.checkpoint_every == 0:
                    save(step)
                if train.sample_every and step % train.sample_every == 0:
                    samples(step)
                batch = next_batch()
    finally:
        stop.restore()
    if step not in ckpt.manager.all_steps():
        save(step)
    ckpt.wait()
    if not interrupted:
        evaluate(step, final=True)
        samples(step)
    monitor.close()
    ckpt.close()
    multihost_utils.sync_global_devices("mav_jax.train end")
    if interrupted and jax.process_index() == 0:
        log.warning(
            "Stopped at step %d on SIGTERM/preemption; run the same command to resume.", step
        )
    return state
