"""The mesh (and logical-axis rules) a model is being traced for, so layers can place activations.

Inside `use_mesh(mesh, rules)` (what the trainer, the plans and the samplers run under),
`constrain(x, logical_axes)` pins an activation's sharding through `with_sharding_constraint`
(e.g. a video's frames over the `context` mesh axis), and kernels that cannot be partitioned
automatically (splash attention) run per shard. Outside it both are no-ops: a model runs unchanged
on one device. (`jax.set_mesh` would also carry the mesh, but it turns Flax's logical axis names
into mesh axes.)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence

import jax
from jax.sharding import Mesh, NamedSharding

from mav_jax.parallel.sharding import DEFAULT_RULES, Rules, logical_to_mesh_spec

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("mav_jax_mesh", default=None)


@contextlib.contextmanager
def use_mesh(mesh: Mesh, rules: Rules = DEFAULT_RULES):
    token = _CURRENT.set((mesh, tuple(rules)))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_mesh() -> Mesh | None:
    current = _CURRENT.get()
    return None if current is None else current[0]


def constrain(x: jax.Array, logical: Sequence[str | None]) -> jax.Array:
    """`x` with its dimensions sharded as the rules map `logical` (one name per dimension; a
    dimension the mapped axes do not divide stays replicated); unchanged outside `use_mesh`."""
    current = _CURRENT.get()
    if current is None:
        return x
    mesh, rules = current
    spec = logical_to_mesh_spec(tuple(logical), x.shape, mesh, rules)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
