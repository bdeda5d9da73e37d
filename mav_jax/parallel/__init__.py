"""Logical axis names, mesh construction and parameter sharding."""

from mav_jax.parallel import logical_axes
from mav_jax.parallel.sharding import (
    DEFAULT_RULES,
    MESH_AXES,
    abstract_model_params,
    logical_to_mesh_spec,
    make_mesh,
    rules_from_config,
    shard_module_state,
    state_shardings,
)

__all__ = [
    "DEFAULT_RULES",
    "MESH_AXES",
    "abstract_model_params",
    "logical_axes",
    "logical_to_mesh_spec",
    "make_mesh",
    "rules_from_config",
    "shard_module_state",
    "state_shardings",
]
