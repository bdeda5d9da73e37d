"""Run a row of identical blocks as one `jax.lax.scan`, so the compiler sees one block, not N.

A TPU compile of an unrolled paper U-Net spends its time generating code for every block's every
fusion; a scanned row is generated once. The blocks keep their own parameters at their own paths
(checkpoints, the image-to-video transplant and temporal-only training see no difference): the
row's parameters are stacked inside the step, a copy the size of the row's (sharded) parameters,
and the stack's gradient is sliced back to each block's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.nn.remat import checkpoint_policy


def _signature(module: nnx.Module) -> tuple:
    graphdef, state = nnx.split(module)
    shapes = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), state)
    return graphdef, jax.tree.structure(shapes), tuple(jax.tree.leaves(shapes))


def identical_runs(
    modules: Sequence[Any], scannable: Callable[[Any], bool]
) -> list[tuple[int, int]]:
    """[start, stop) index ranges covering `modules` in order: each a run of consecutive
    `scannable` modules with the same structure and parameter shapes, or a single module."""
    runs: list[tuple[int, int]] = []
    start = 0
    while start < len(modules):
        stop = start + 1
        if scannable(modules[start]):
            first = _signature(modules[start])
            while (
                stop < len(modules)
                and scannable(modules[stop])
                and _signature(modules[stop]) == first
            ):
                stop += 1
        runs.append((start, stop))
        start = stop
    return runs


def scan_blocks(
    blocks: Sequence[nnx.Module],
    apply: Callable[[nnx.Module, jax.Array, Any], jax.Array],
    carry: jax.Array,
    per_block: Any,
    remat: str = "none",
) -> tuple[jax.Array, jax.Array]:
    """`carry = apply(block, carry, per_block[i])` for each block, as one scan; returns the last
    carry and every block's output stacked on a leading axis (unused ones are never kept).

    `per_block` is a pytree whose leaves have a leading axis of len(blocks) (None: nothing);
    `remat` names the policy (`nn.remat`) the scanned body is rematerialised with.
    """
    graphdef = nnx.graphdef(blocks[0])
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[nnx.state(b) for b in blocks])

    def body(carry, inputs):
        state, extra = inputs
        out = apply(nnx.merge(graphdef, state), carry, extra)
        return out, out

    if remat != "none":
        body = jax.checkpoint(body, policy=checkpoint_policy(remat))
    return jax.lax.scan(body, carry, (stacked, per_block))
