"""One XLA device per CPU core, so a CPU-only run trains data-parallel on all of the host's cores.

XLA:CPU runs a program's ops one after another, each spread over a shared thread pool; at the
small shapes of CPU runs most ops are too small to keep every core busy. Splitting the batch over
one device per core runs several copies of the program side by side instead (figures:
bench/README.md). The count only shapes JAX's CPU backend: on TPU or GPU hosts, whose default
backend is the accelerator, it changes nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import jax
from absl import logging

# What a user sets to choose the count themselves; then it is left alone.
_USER_SETTINGS = ("JAX_NUM_CPU_DEVICES",)
_USER_XLA_FLAG = "--xla_force_host_platform_device_count"


def host_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity call
        return os.cpu_count() or 1


def device_count_for(batch_sizes: Iterable[int], cores: int) -> int:
    """The most devices, at most `cores`, that split every batch in `batch_sizes` evenly."""
    common = math.gcd(*[int(b) for b in batch_sizes if int(b) > 0]) or 1
    return max(d for d in range(1, max(cores, 1) + 1) if common % d == 0)


def use_host_cores(batch_sizes: Iterable[int], cores: int | None = None) -> int | None:
    """Give JAX's CPU backend one device per core (fewer where the batches do not divide).

    Call before anything starts JAX's backends. Returns the device count set, or None where it was
    left alone: the user chose a count (JAX_NUM_CPU_DEVICES, XLA_FLAGS' host-platform count, or
    `jax_num_cpu_devices`), or JAX's backends had already started.
    """
    if any(name in os.environ for name in _USER_SETTINGS):
        return None
    if _USER_XLA_FLAG in os.environ.get("XLA_FLAGS", ""):
        return None
    if jax.config.jax_num_cpu_devices != -1:
        return None
    count = device_count_for(batch_sizes, cores or host_cores())
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backends have started: the count is fixed for this process
        return None
    logging.info(
        "JAX's CPU backend gets %d devices (one per core); a CPU run splits batches", count
    )
    return count
