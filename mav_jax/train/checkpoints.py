"""Orbax checkpoints of the train state, the data iterator state and the config.

Async saves every N steps with keep-N retention; restoring tries the newest checkpoint first and
falls back to older ones when it is damaged (reported, never silently skipped). Arrays restore
onto whatever mesh the abstract target names, so a run can resume on another slice shape.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint._src.metadata import array_metadata_store

from mav_jax.data import files

log = logging.getLogger(__name__)

# Orbax saves a replicated array in slices, one a replica, so replicas write in parallel. Each
# slice is an eager `jax.lax.slice`, compiled once per array shape: a tiny stage's first save
# compiled 352 of them (9 s on a 2-core CPU). Below this many bytes a replica, one replica writes
# the whole array; paper-scale kernels are larger and still split. Otherwise the handler is Orbax's
# default one, array metadata store included (it has no public name).
MIN_SLICE_BYTES_FOR_REPLICA_PARALLEL = 4 << 20
ocp.type_handlers.register_type_handler(
    jax.Array,
    ocp.type_handlers.ArrayHandler(
        array_metadata_store=array_metadata_store.Store(),
        min_slice_bytes_for_replica_parallel=MIN_SLICE_BYTES_FOR_REPLICA_PARALLEL,
    ),
    override=True,
)


def abstract_like(tree):
    """ShapeDtypeStructs with the shardings of `tree`'s arrays: a restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


class Checkpointer:
    def __init__(
        self,
        directory: str,
        *,
        max_to_keep: int = 3,
        save_interval_steps: int = 1000,
        async_save: bool = True,
    ):
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            save_interval_steps=save_interval_steps,
            enable_async_checkpointing=async_save,
        )
        # Orbax refuses relative paths, and only when the first save lands: resolve them up front.
        self.manager = ocp.CheckpointManager(files.absolute(directory), options=options)
        self.damaged: list[tuple[int, str]] = []  # (step, error) of checkpoints that failed to load

    def save(self, step: int, state, data_state: dict | None, config: dict, force: bool = False):
        """Save if `step` is on the interval (or `force`, e.g. at the end or on SIGTERM)."""
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state or {}),
            config=ocp.args.JsonSave(config),
        )
        return self.manager.save(step, args=args, force=force)

    def restore_latest(self, abstract_state) -> tuple[int, Any, dict, dict] | None:
        """(step, state, data_state, config) of the newest readable checkpoint, or None."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            args = ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                data=ocp.args.JsonRestore(),
                config=ocp.args.JsonRestore(),
            )
            try:
                restored = self.manager.restore(step, args=args)
            except Exception as error:  # noqa: BLE001 -- any failure means this one is unusable
                self.damaged.append((step, f"{type(error).__name__}: {error}"))
                log.warning(
                    "Checkpoint at step %d is damaged (%s); trying an older one.", step, error
                )
                continue
            return step, restored.state, dict(restored.data), dict(restored.config)
        return None

    def restore_config(self, step: int) -> dict:
        """Only the config saved with `step` (to rebuild the model before restoring its state)."""
        restored = self.manager.restore(
            step, args=ocp.args.Composite(config=ocp.args.JsonRestore())
        )
        return dict(restored.config)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
