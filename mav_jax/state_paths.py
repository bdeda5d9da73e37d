"""Plain-string paths into NNX state, shared by weight transplants and checkpoint converters."""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

Path = tuple[str, ...]


def path_key(path) -> Path:
    """An NNX state path as plain strings: ('down', '0', 'res', 'conv1', ...)."""
    return tuple(str(getattr(part, "key", part)) for part in path)


def flat_params(module_or_state) -> dict[Path, nnx.Variable]:
    """{path: Param} of a module, or of a state already holding only parameters."""
    if isinstance(module_or_state, nnx.State):
        state = module_or_state
    else:
        state = nnx.state(module_or_state, nnx.Param)
    return {path_key(path): var for path, var in nnx.to_flat_state(state)}


def state_from_arrays(abstract_state: nnx.State, arrays: Mapping[Path, np.ndarray], what: str):
    """Fill an abstract state (from nnx.eval_shape) with `arrays` keyed by path, checking that the
    paths and shapes match exactly; `what` names the source in error messages."""
    flat = nnx.to_flat_state(abstract_state)
    wanted = {path_key(path) for path, _ in flat}
    missing, unexpected = sorted(wanted - set(arrays)), sorted(set(arrays) - wanted)
    if missing or unexpected:
        raise ValueError(
            f"{what} does not match the model: missing {missing[:4]}, unexpected {unexpected[:4]}."
        )
    filled = []
    for path, var in flat:
        value = np.asarray(arrays[path_key(path)])
        if value.shape != var.get_value().shape:
            raise ValueError(
                f"{what}: {'/'.join(path_key(path))} has shape {value.shape}, the model expects "
                f"{var.get_value().shape}."
            )
        filled.append((path, var.replace(value=jnp.asarray(value, var.get_value().dtype))))
    return nnx.from_flat_state(filled)
