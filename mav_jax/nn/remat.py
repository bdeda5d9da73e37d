"""Rematerialisation policies, chosen by name in a model config (`remat`).

What the backward pass keeps of each block's forward activations, and what it recomputes:

* `none`: keeps every activation XLA needs (fastest step, most memory).
* `full`: keeps only each block's inputs and recomputes the block in the backward pass.
* `save_dots`: keeps the outputs of matmuls and convolutions (the expensive ops) and recomputes
  the cheap elementwise work between them (norms, SiLU, residual adds).
* `offload`: like `save_dots`, but the saved outputs move to the host's memory (TPU `pinned_host`)
  and back for the backward pass: device memory of `full` at less recomputation, paid in
  host-device transfers. Only where the chip supports host offload (TPU).

Older configs said `remat: True / False`; those mean `full` / `none`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

REMAT_POLICIES = ("none", "full", "save_dots", "offload")


def normalise_remat(value: bool | str) -> str:
    """True/False (older configs) -> 'full'/'none'; names pass through."""
    if isinstance(value, bool):
        return "full" if value else "none"
    return value


def remat_problems(value: bool | str) -> list[str]:
    name = normalise_remat(value)
    if name not in REMAT_POLICIES:
        return [f"remat must be one of {REMAT_POLICIES} (or true/false), got '{value}'"]
    return []


def _offload_dots(prim, *_, **__):
    """Offload every matmul / convolution output to host memory; recompute the rest."""
    from jax._src.interpreters import partial_eval as pe

    if jax.checkpoint_policies.dots_saveable(prim):
        return pe.Offloadable(src="device", dst="pinned_host")
    return pe.Recompute


def checkpoint_policy(name: str) -> Callable | None:
    """The `jax.checkpoint` policy for a remat name (None: save nothing, i.e. `full`)."""
    return {
        "full": None,
        "save_dots": jax.checkpoint_policies.dots_saveable,
        "offload": _offload_dots,
    }[name]


def rematted(fn: Callable, remat: str) -> Callable:
    """`fn(module, *args)` rematerialised with the named policy, or `fn` itself for `none`.

    The module goes through `jax.checkpoint` as its split state, merged back inside: `nnx.remat`
    writes the module's state back after the call, which fails where the module was merged
    inside a sampler's loop ("Cannot mutate Param from a different trace level"). The blocks hold
    no state that a call changes, so nothing needs writing back."""
    if remat == "none":
        return fn
    policy = checkpoint_policy(remat)

    def call(module: nnx.Module, *args):
        graphdef, state = nnx.split(module)
        pure = lambda state, *args: fn(nnx.merge(graphdef, state), *args)  # noqa: E731
        return jax.checkpoint(pure, policy=policy)(state, *args)

    return call
