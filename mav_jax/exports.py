"""The inference export format, readable and writable by any layer above this one.

An export is a directory holding the EMA parameters (`params/`, Orbax) and the full stage config
with where it came from (`config.json`). Nothing here knows what a stage is: callers build the
model the config describes and pass its abstract parameters (`parallel.abstract_model_params`),
so the shardings come from the model's logical axes on the caller's mesh, not the saver's.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp
from flax import nnx

from mav_jax.data import files

PARAMS, CONFIG = "params", "config.json"  # inside an export directory


def is_export(path: str) -> bool:
    return files.exists(os.path.join(path, CONFIG))


def write_export(
    output: str, config: ml_collections.ConfigDict, params: nnx.State, source: dict
) -> None:
    """An export directory: `params` (Orbax) and the stage `config` with where they came from."""
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.join(files.absolute(output), PARAMS), params, force=True)
    checkpointer.wait_until_finished()
    if jax.process_index() == 0:
        record = {**config.to_dict(), "exported_from": source}
        with files.open_file(os.path.join(output, CONFIG), "w") as f:
            json.dump(record, f, indent=1)


def _record(path: str) -> dict:
    if not is_export(path):
        raise FileNotFoundError(
            f"{path} is not an exported checkpoint (no {CONFIG}); make one with "
            f"python -m mav_jax.export --workdir=TRAIN_DIR --output={path}"
        )
    with files.open_file(os.path.join(path, CONFIG)) as f:
        return json.load(f)


def export_source(path: str) -> dict | None:
    """Where the export at `path` came from (`write_export`'s `source`, e.g. workdir and step),
    or None when `path` holds no export."""
    return _record(path).get("exported_from", {}) if is_export(path) else None


def read_config(path: str) -> ml_collections.ConfigDict:
    """The stage config an export was trained with (FileNotFoundError, saying how to make one,
    when `path` holds no export)."""
    values = _record(path)
    values.pop("exported_from", None)
    return ml_collections.ConfigDict(values)


def restore_params(path: str, target: nnx.State) -> nnx.State:
    """The export's parameters, restored onto `target`'s shapes and shardings."""
    return ocp.StandardCheckpointer().restore(os.path.join(files.absolute(path), PARAMS), target)
