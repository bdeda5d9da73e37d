"""Multi-host start-up: one call that is a no-op on a single host.

On Cloud TPU pods `jax.distributed.initialize()` finds the coordinator and the process ids from
the TPU metadata; elsewhere (CPU clusters, tests on 127.0.0.1) they are passed explicitly.
"""

from __future__ import annotations

import os

import jax


def _on_multi_host_tpu() -> bool:
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return len([h for h in hosts.split(",") if h]) > 1


def initialize(coordinator_address: str = "", num_processes: int = 1, process_id: int = 0) -> None:
    """Join the job's processes; safe to call when there is only one."""
    if jax.distributed.is_initialized():
        return
    if coordinator_address:
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ValueError(
                f"process_id={process_id} must be in [0, num_processes={num_processes})."
            )
        # CPU processes talk through gloo (TPU/GPU collectives are unaffected by this setting).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    elif _on_multi_host_tpu():
        jax.distributed.initialize()
