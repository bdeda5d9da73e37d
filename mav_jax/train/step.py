"""The sharded train step shared by every stage: one `jax.jit` with explicit shardings and a
donated state. Parameters, EMA and optimiser state are sharded by the logical-axis rules (FSDP);
the batch is split over ('data', 'fsdp')."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.parallel import DEFAULT_RULES, state_shardings


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any  # nnx.State of the model's Params
    ema: Any
    opt_state: Any
    rng: jax.Array


def init_train_state(model: nnx.Module, optimizer, mesh: Mesh, seed: int, rules=DEFAULT_RULES):
    """(graphdef, TrainState placed on the mesh)."""
    graphdef, params = nnx.split(model, nnx.Param)
    # The state owns its buffers (the step donates them), so it must not alias the model's arrays.
    params = jax.tree.map(jnp.copy, jax.device_put(params, state_shardings(params, mesh, rules)))
    replicated = NamedSharding(mesh, PartitionSpec())
    state = TrainState(
        step=jax.device_put(jnp.zeros((), jnp.int32), replicated),
        params=params,
        ema=jax.tree.map(jnp.copy, params),
        opt_state=_on_mesh(jax.jit(optimizer.init)(params), mesh),  # moments follow the params
        rng=jax.device_put(jax.random.key_data(jax.random.key(seed)), replicated),
    )
    return graphdef, state


def _on_mesh(tree, mesh: Mesh):
    """Leaves already sharded on `mesh` stay; the rest (scalar counters) are replicated on it."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(x):
        sharding = getattr(x, "sharding", None)
        if isinstance(sharding, NamedSharding) and sharding.mesh == mesh:
            return x
        return jax.device_put(x, replicated)

    return jax.tree.map(place, tree)


def make_train_step(graphdef, stage, optimizer, mesh: Mesh, state: TrainState, batch_example: dict,
                    ema_decay: float = 0.999):  # fmt: skip
    """A jitted `step(state, batch) -> (state, metrics)` with explicit in/out shardings."""
    state_sharding = jax.tree.map(lambda x: x.sharding, state)
    batch_sharding = {
        k: NamedSharding(mesh, PartitionSpec(("data", "fsdp"))) for k in batch_example
    }

    def step(state: TrainState, batch: dict):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

        def loss_fn(params):
            loss, _ = stage.loss(nnx.merge(graphdef, params), batch, key)
            return loss

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, state.ema, params)
        new_state = state.replace(step=state.step + 1, params=params, ema=ema, opt_state=opt_state)
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return jax.jit(
        step,
        in_shardings=(state_sharding, batch_sharding),
        out_shardings=(state_sharding, None),
        donate_argnums=0,
    )
