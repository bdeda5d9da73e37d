"""A training state and batch as shapes (with shardings): what the plan tools lower and compile
without allocating a model."""

from __future__ import annotations


def make_model_fn(stage, seed: int):
    from flax import nnx

    return lambda: stage.build_model(nnx.Rngs(seed))


def abstract_params(stage, mesh, rules=None):
    """(graphdef, params as ShapeDtypeStructs carrying their shardings on `mesh`): a restore or
    compile target for the stage's model with no parameter memory allocated."""
    from mav_jax.parallel import DEFAULT_RULES, abstract_model_params

    return abstract_model_params(make_model_fn(stage, 0), mesh, rules or DEFAULT_RULES)


def optimizer_from_config(config, params):
    from mav_jax.train.optimizer import make_optimizer

    train = config.train
    return make_optimizer(
        train.learning_rate,
        train.num_steps,
        warmup_steps=train.warmup_steps,
        weight_decay=train.weight_decay,
        clip_norm=train.clip_norm or None,
        temporal_only=train.temporal_only,
        params=params,
    )


def example_batch(stage, batch_size: int) -> dict:
    """Abstract global batch: the stage's own transforms applied to a blank source clip."""
    import jax
    import numpy as np

    from mav_jax.data.loader import transform_record

    frames = (stage.num_frames - 1) * max(stage.clips.frame_skips) + 1
    size = stage.resolution
    record = {
        "video": np.zeros((frames, size, size, 3), np.uint8),
        "fps": np.float32(24.0),
        "caption": b"a caption",
    }
    record = transform_record(stage.operations(), record, np.random.default_rng(0))
    batch = {
        k: jax.ShapeDtypeStruct((batch_size, *np.shape(v)), np.asarray(v).dtype)
        for k, v in record.items()
        if np.asarray(v).dtype.kind in "fiub"
    }
    # What a frozen network (CLIP) adds to each batch before the step, as shapes.
    batch.update(stage.conditioning_shapes(batch_size))
    return batch


def abstract_train_state(config, stage, mesh):
    """(graphdef, TrainState of ShapeDtypeStructs with shardings, optimizer): nothing allocated."""
    import jax

    from mav_jax.parallel import rules_from_config
    from mav_jax.train.step import TrainState, optimizer_state_shardings

    graphdef, params = abstract_params(stage, mesh, rules_from_config(config))
    optimizer = optimizer_from_config(config, params)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    opt_state = jax.tree.map(
        lambda shape, sharding: jax.ShapeDtypeStruct(shape.shape, shape.dtype, sharding=sharding),
        jax.eval_shape(optimizer.init, params),
        optimizer_state_shardings(optimizer, params, mesh),
    )
    scalar = lambda dtype, shape=(): jax.ShapeDtypeStruct(shape, dtype, sharding=replicated)
    state = TrainState(
        step=scalar("int32"),
        params=params,
        ema=params,
        opt_state=opt_state,
        rng=scalar("uint32", (2,)),
    )
    return graphdef, state, optimizer


def lower_train_step(config, stage, mesh, per_device_batch: int):
    """The trainer's step (its shardings, donation, remat, accumulation, temporal-only) lowered for
    `per_device_batch` examples per batch shard of `mesh`, from abstract inputs; returns
    (lowered, abstract state, abstract batch). Nothing is allocated or run."""
    from mav_jax.parallel import rules_from_config
    from mav_jax.parallel.mesh_context import use_mesh
    from mav_jax.parallel.sharding import batch_shards, context_problems
    from mav_jax.train.step import train_step_from_config

    if problems := context_problems(dict(mesh.shape), stage.num_frames):
        raise ValueError(problems[0])

    with use_mesh(mesh, rules_from_config(config)):  # activation shardings, as the trainer
        graphdef, state, optimizer = abstract_train_state(config, stage, mesh)
        batch = example_batch(stage, per_device_batch * batch_shards(mesh))
        step = train_step_from_config(config, graphdef, stage, optimizer, mesh, state, batch)
        return step.lower(state, batch), state, batch
