"""The sharded train step shared by every stage: one `jax.jit` with explicit shardings and a
donated state. Parameters, EMA and optimiser state are sharded by the logical-axis rules (FSDP);
the batch is split over ('data', 'fsdp')."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.parallel import DEFAULT_RULES, state_shardings
from mav_jax.parallel.sharding import BATCH_AXES
from mav_jax.train.optimizer import trainable_paths


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any  # nnx.State of the model's Params
    ema: Any
    opt_state: Any
    rng: jax.Array


def sharded_init(make_model: Callable[[], nnx.Module], mesh: Mesh, rules=DEFAULT_RULES):
    """(graphdef, params) with every parameter created directly in its shard: the model is built
    inside `jax.jit` with the rule table's out_shardings, so no host holds the whole model."""
    abstract = nnx.eval_shape(make_model)
    graphdef, abstract_params = nnx.split(abstract, nnx.Param)
    shardings = state_shardings(abstract_params, mesh, rules)
    init = jax.jit(lambda: nnx.state(make_model(), nnx.Param), out_shardings=shardings).lower()
    # Run once, so not worth optimising: on CPU, XLA's backend optimisations took half the
    # compile (a quickstart U-Net: 10.5 s -> 5.8 s without them).
    on_cpu = mesh.devices.flat[0].platform == "cpu"
    options = {"xla_backend_optimization_level": 0} if on_cpu else None
    return graphdef, init.compile(compiler_options=options)()


def init_train_state(model: nnx.Module, optimizer, mesh: Mesh, seed: int, rules=DEFAULT_RULES):
    """(graphdef, TrainState placed on the mesh) from a concrete model."""
    graphdef, params = nnx.split(model, nnx.Param)
    params = jax.device_put(params, state_shardings(params, mesh, rules))
    return graphdef, train_state_from_params(params, optimizer, mesh, seed)


def train_state_from_params(params, optimizer, mesh: Mesh, seed: int) -> TrainState:
    """A fresh TrainState (step 0, EMA = params) around parameters already sharded on `mesh`."""
    # The state owns its buffers (the step donates them), so it must not alias the caller's arrays.
    params, ema = _two_copies(params)
    replicated = NamedSharding(mesh, PartitionSpec())
    return TrainState(
        step=jax.device_put(jnp.zeros((), jnp.int32), replicated),
        params=params,
        ema=ema,
        opt_state=jax.jit(
            optimizer.init, out_shardings=optimizer_state_shardings(optimizer, params, mesh)
        )(params),
        rng=jax.device_put(jax.random.key_data(jax.random.key(seed)), replicated),
    )


def _two_copies(tree):
    """Two copies of `tree`, each leaf keeping its sharding, from one compiled program (copying
    leaf by leaf compiles a program per leaf shape: hundreds of compiles on CPU)."""
    shardings = jax.tree.map(lambda x: x.sharding, tree)
    copy = lambda t: jax.tree.map(jnp.copy, t)  # noqa: E731
    return jax.jit(lambda t: (copy(t), copy(t)), out_shardings=(shardings, shardings))(tree)


def optimizer_state_shardings(optimizer, params, mesh: Mesh):
    """Shardings for `optimizer.init(params)`: every moment takes the sharding of the parameter it
    belongs to (its path ends with that parameter's path); counters are replicated.

    Left to XLA, the moments (zeros that do not depend on the parameters' values) come out
    replicated, which would keep two full copies of the model on every device.
    """
    replicated = NamedSharding(mesh, PartitionSpec())
    by_path = {
        tuple(map(str, path)): leaf.sharding
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
    }

    def choose(path, leaf):
        key = tuple(map(str, path))
        for start in range(len(key)):
            sharding = by_path.get(key[start:])
            if sharding is not None and getattr(leaf, "shape", None) is not None:
                return sharding
        return replicated

    return jax.tree_util.tree_map_with_path(choose, jax.eval_shape(optimizer.init, params))


def ema_decay_at(step: jax.Array, ema_decay: float) -> jax.Array:
    """The EMA's decay for the update after `step` updates: (1 + step) / (10 + step), capped at
    `ema_decay`. A fixed 0.99 would leave a 150-step run's EMA 22% its initialisation (0.99^150)
    and the rest lagging ~100 steps behind; the warmup keeps a short run's EMA near its recent
    weights and is `ema_decay` itself from step 890 on (0.99) or 89,990 (0.9999)."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(jnp.float32(ema_decay), (1.0 + step) / (10.0 + step))


def _split_micro_batches(batch: dict, count: int, sharding: NamedSharding) -> dict:
    """(B, ...) -> (count, B / count, ...), each micro-batch still split over the batch axes.

    Example b goes to micro-batch b % count, so every device's rows stay on that device.
    """

    def split(x):
        x = x.reshape(x.shape[0] // count, count, *x.shape[1:]).swapaxes(0, 1)
        spec = PartitionSpec(None, *sharding.spec)
        return jax.lax.with_sharding_constraint(x, NamedSharding(sharding.mesh, spec))

    return jax.tree.map(split, batch)


def make_train_step(
    graphdef,
    stage,
    optimizer,
    mesh: Mesh,
    state: TrainState,
    batch_example: dict,
    ema_decay: float = 0.999,
    grad_accum_steps: int = 1,
    trainable: Callable[[tuple], bool] | None = None,
):
    """A jitted `step(state, batch) -> (state, metrics)` with explicit in/out shardings.

    With `trainable` (a predicate on parameter paths, e.g. `is_temporal_path`) only the parameters
    it accepts are differentiated: the others enter the loss through `stop_gradient`, so XLA never
    computes their weight gradients (which the optimizer would zero anyway), and `grad_norm` is the
    trained parameters'.

    With `grad_accum_steps` = k the batch is processed as k micro-batches whose gradients are
    averaged before one update: the same update as the whole batch, at 1/k of the activations.
    """
    state_sharding = jax.tree.map(lambda x: x.sharding, state)
    batch_spec = NamedSharding(mesh, PartitionSpec(BATCH_AXES))
    batch_sharding = {k: batch_spec for k in batch_example}
    logged_names = tuple(stage.logged_metrics)
    frozen = (
        None
        if trainable is None
        else jax.tree_util.tree_map_with_path(lambda path, _: not trainable(path), state.params)
    )

    def step(state: TrainState, batch: dict):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

        def loss_fn(params, micro_batch, micro_key):
            if frozen is not None:
                params = jax.tree.map(
                    lambda p, f: jax.lax.stop_gradient(p) if f else p, params, frozen
                )
            loss, aux = stage.loss(nnx.merge(graphdef, params), micro_batch, micro_key)
            logged = {name: jnp.asarray(aux[name], jnp.float32) for name in logged_names}
            return loss, logged

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        if grad_accum_steps == 1:
            (loss, logged), grads = grad_fn(state.params, batch, key)
        else:
            micro = _split_micro_batches(batch, grad_accum_steps, batch_spec)

            def accumulate(carry, inputs):
                index, micro_batch = inputs
                (loss, logged), grads = grad_fn(
                    state.params, micro_batch, jax.random.fold_in(key, index)
                )
                return jax.tree.map(jnp.add, carry, (loss, logged, grads)), None

            zeros = (
                jnp.zeros((), jnp.float32),
                {n: jnp.zeros(()) for n in logged_names},
                jax.tree.map(jnp.zeros_like, state.params),
            )
            (loss, logged, grads), _ = jax.lax.scan(
                accumulate, zeros, (jnp.arange(grad_accum_steps), micro)
            )
            loss, logged, grads = jax.tree.map(
                lambda x: x / grad_accum_steps, (loss, logged, grads)
            )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        decay = ema_decay_at(state.step, ema_decay)
        ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state.ema, params)
        new_state = state.replace(step=state.step + 1, params=params, ema=ema, opt_state=opt_state)
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), **logged}

    return jax.jit(
        step,
        in_shardings=(state_sharding, batch_sharding),
        out_shardings=(state_sharding, None),
        donate_argnums=0,
    )


def train_step_from_config(config, graphdef, stage, optimizer, mesh: Mesh, state, batch_example):
    """`make_train_step` with `config.train`'s EMA decay, accumulation and temporal-only choice:
    the one step the trainer runs and the plans compile."""
    train = config.train
    return make_train_step(
        graphdef,
        stage,
        optimizer,
        mesh,
        state,
        batch_example,
        ema_decay=train.ema_decay,
        grad_accum_steps=train.grad_accum_steps,
        trainable=trainable_paths(train.temporal_only),
    )
