"""The TPU compiler's own figures for a train step, on a CPU host: compile-only TPU devices.

`libtpu` (the `plan` extra) compiles for any TPU topology without a TPU:
`jax.experimental.topologies.get_topology_desc("v5e:8x8", platform="tpu")` gives compile-only
devices; the trainer's real step is lowered on a mesh over them with abstract inputs (nothing is
allocated) and compiled, and `memory_analysis()` / `cost_analysis()` are the compiler's.
Run with JAX_PLATFORMS=cpu (the plan tool sets it).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import resource
import time
from typing import Any

GIB = 2**30
PLAN_EXTRA = "pip install -e '.[plan]' (jax[tpu]: libtpu, the TPU compiler, for this jax)"


@dataclasses.dataclass(frozen=True)
class Chip:
    hbm_gib: float  # HBM per chip
    peak_tflops: float  # dense bf16
    hbm_gbps: float  # HBM bandwidth, GB/s
    dims: int  # topology dimensions: 2 (v5e, v6e) or 3 (v4, v5p)


# Google Cloud TPU system architecture pages (cloud.google.com/tpu/docs/v4, /v5e, /v5p, /v6e):
# HBM per chip, bf16 peak and HBM bandwidth per chip.
CHIPS = {
    "v4": Chip(32, 275.0, 1228.0, 3),
    "v5e": Chip(16, 197.0, 819.0, 2),
    "v5p": Chip(95, 459.0, 2765.0, 3),
    "v6e": Chip(32, 918.0, 1640.0, 2),
}


class PlanError(ValueError):
    """A topology, mesh or setting the plan cannot use, in words a user can act on."""


def parse_topology(name: str) -> tuple[str, tuple[int, ...]]:
    """'v5e:8x8' -> ('v5e', (8, 8)), checked before anything compiles."""
    match = re.fullmatch(r"(v4|v5e|v5p|v6e):(\d+(?:x\d+)*)", name or "")
    if not match:
        raise PlanError(
            f"Unknown TPU topology '{name}': use FAMILY:DIMS with FAMILY one of {sorted(CHIPS)}, "
            "e.g. v5e:8x8, v6e:4x4, v4:4x4x4, v5p:4x4x4."
        )
    family, dims = match.group(1), tuple(int(d) for d in match.group(2).split("x"))
    if len(dims) != CHIPS[family].dims or min(dims) < 1:
        raise PlanError(f"A {family} topology has {CHIPS[family].dims} dimensions, got '{name}'.")
    return family, dims


def topology_devices(name: str, num_slices: int = 1) -> list:
    """Compile-only devices of `num_slices` slices of topology `name` (needs libtpu)."""
    parse_topology(name)
    if importlib.util.find_spec("libtpu") is None:
        raise PlanError(f"The TPU compiler is not installed: {PLAN_EXTRA}.")
    from jax.experimental import topologies

    try:
        desc = topologies.get_topology_desc(
            topology_name=name,
            platform="tpu",
            **({"num_slices": num_slices} if num_slices > 1 else {}),
        )
    except Exception as error:  # libtpu's XlaRuntimeError
        raise PlanError(f"libtpu cannot build topology '{name}': {error}") from error
    return list(desc.devices)


def check_mesh(mesh_shape: dict, devices: list, name: str, num_slices: int) -> None:
    if math.prod(mesh_shape.values()) != len(devices):
        raise PlanError(
            f"The mesh {mesh_shape} has {math.prod(mesh_shape.values())} devices; "
            f"{num_slices} x {name} has {len(devices)}: make the sizes multiply to it."
        )


def compile_step(
    config, mesh_shape: dict, devices: list, per_device_batch: int, num_slices: int = 1
) -> dict:
    """Compile the trainer's step for `devices`; the compiler's per-device figures."""
    from mav_jax.parallel import make_mesh
    from mav_jax.parallel.compiler_options import step_compiler_options
    from mav_jax.stages import stage_from_config
    from mav_jax.train.abstract_state import lower_train_step

    stage = stage_from_config(config)
    mesh = make_mesh({**mesh_shape, "num_slices": num_slices}, devices)
    lowered = lower_train_step(config, stage, mesh, per_device_batch)[0]
    began = time.perf_counter()
    compiled, refusal = compile_or_refusal(lowered, step_compiler_options(config, mesh))
    seconds = time.perf_counter() - began
    if refusal is not None:
        return {"per_device_batch": per_device_batch, **refusal, "compile_s": seconds}
    memory = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    peak = (
        memory.argument_size_in_bytes
        + memory.temp_size_in_bytes
        + max(memory.output_size_in_bytes - memory.alias_size_in_bytes, 0)
    )
    return {
        "per_device_batch": per_device_batch,
        "argument_gib": memory.argument_size_in_bytes / GIB,
        "temporary_gib": memory.temp_size_in_bytes / GIB,
        "output_gib": memory.output_size_in_bytes / GIB,
        "peak_gib": peak / GIB,
        # Activations offloaded to the host (remat="offload"), per device.
        "host_temporary_gib": getattr(memory, "host_temp_size_in_bytes", 0) / GIB,
        "flops": float(cost.get("flops", 0.0)),
        "bytes_accessed": float(cost.get("bytes accessed", 0.0)),
        "compile_s": seconds,
    }


def compile_or_refusal(lowered, options: dict | None = None) -> tuple[Any, dict | None]:
    """(compiled, None); or (None, the refusal) when the TPU compiler refuses a program too big
    for the chip's HBM, which is an answer, not a crash. A shortfall of scoped VMEM (one op's
    working set, a compiler option) is a PlanError that names the option to raise."""
    try:
        return lowered.compile(options or {}), None
    except Exception as error:  # libtpu's XlaRuntimeError
        if "exceeded scoped vmem" in str(error):
            raise PlanError(_vmem_shortfall(str(error))) from error
        if not _out_of_memory(str(error)):
            raise
        return None, {
            "fits": False,
            "peak_gib": _used_hbm_gib(str(error)),
            "compiler_says": _first_line(str(error)),
        }


def _vmem_shortfall(message: str) -> str:
    """libtpu's scoped-VMEM error, shortened to the op, what it needs and the limit."""
    op = re.search(r"allocating on stack for (%\S+) = (\S+)", message)
    size = re.search(r"Scoped allocation with size (\S+) and limit (\S+) exceeded", message)
    said = (
        f"{op.group(1)} ({op.group(2)}) needs {size.group(1)} and the limit is {size.group(2)}"
        if op and size
        else _first_line(message)
    )
    return (
        "The TPU compiler needs more scoped VMEM for one of this step's ops than "
        "config.train.tpu_compiler_options allows; raise xla_tpu_scoped_vmem_limit_kib there. "
        f"It says: {said}."
    )


def _out_of_memory(message: str) -> bool:
    return "RESOURCE_EXHAUSTED" in message or "Ran out of memory" in message


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return next((line for line in lines if "memory" in line.lower()), lines[0] if lines else "")[
        :300
    ]


# How libtpu words it: "Used 20.5G of 15.48G hbm", or "the total memory required for HLO
# temporaries (420.56G) exceeds available HBM (15.75G)".
_NEEDED = (
    re.compile(r"Used ([\d.]+)([KMGT]?) of [\d.]+[KMGT]? hbm"),
    re.compile(r"required for [^(]*\(([\d.]+)([KMGT]?)\)"),
)


def _used_hbm_gib(message: str) -> float | None:
    """The HBM the compiler says the program needs, in GiB (a lower bound: what it had counted
    when it gave up)."""
    match = next((m for pattern in _NEEDED if (m := pattern.search(message))), None)
    if not match:
        return None
    scale = {"": 2**-30, "K": 2**-20, "M": 2**-10, "G": 1.0, "T": 2**10}
    return float(match.group(1)) * scale[match.group(2)]


def plan_on_topology(
    config, mesh_shape: dict, name: str, num_slices: int = 1, search: bool = True
) -> dict:
    """The compiler's figures for the config's micro-batch on `num_slices` x `name`, whether it
    fits each device's HBM, the largest per-device micro-batch that fits (found by compiling
    candidates), and a roofline lower bound on the step time."""
    family, dims = parse_topology(name)
    devices = topology_devices(name, num_slices)
    check_mesh(mesh_shape, devices, name, num_slices)
    chip = CHIPS[family]
    per_chip = len(devices) // (num_slices * math.prod(dims))  # v4 shows its 2 cores per chip
    hbm = chip.hbm_gib / per_chip
    shards = mesh_shape.get("data", 1) * mesh_shape.get("fsdp", 1)
    micro = max(config.train.global_batch_size // shards // config.train.grad_accum_steps, 1)
    at_config = compile_step(config, mesh_shape, devices, micro, num_slices)

    def fits(result: dict) -> bool:
        return result.get("fits", True) and result["peak_gib"] <= hbm

    largest, stopped = None, None
    limit = 4 * micro  # the search compiles candidates up to this micro-batch

    def candidate(batch: int) -> dict:
        """A candidate's figures; one the compiler cannot build with the config's options (an op
        needs more scoped VMEM) ends the search there, and the report says why."""
        nonlocal stopped
        try:
            return compile_step(config, mesh_shape, devices, batch, num_slices)
        except PlanError as error:
            stopped = f"micro-batch {batch}: {error}"
            return {"fits": False, "peak_gib": None}

    if search:
        low, high, tried = 0, None, {micro: at_config}
        batch = 1
        while high is None and batch <= limit:
            tried[batch] = tried.get(batch) or candidate(batch)
            if fits(tried[batch]):
                low, batch = batch, batch * 2
            else:
                high = batch
        while high is not None and high - low > 1:
            middle = (low + high) // 2
            tried[middle] = tried.get(middle) or candidate(middle)
            low, high = (middle, high) if fits(tried[middle]) else (low, middle)
        largest = low
    flops, moved = at_config.get("flops"), at_config.get("bytes_accessed")
    roofline = None
    if flops is not None:  # the compiler refused an oversized program: no cost analysis
        # The larger of compute time at peak and HBM traffic time at full bandwidth.
        roofline = max(
            flops / (chip.peak_tflops * 1e12 / per_chip), moved / (chip.hbm_gbps * 1e9 / per_chip)
        )
    return {
        "topology": name,
        "num_slices": num_slices,
        "device_kind": devices[0].device_kind,
        "devices": len(devices),
        "mesh": mesh_shape,
        "compiler_options": config.train.get("tpu_compiler_options", ""),
        "hbm_gib_per_device": hbm,
        "micro_batch_per_device": micro,
        **{k: v for k, v in at_config.items() if k != "per_device_batch"},
        "fits": fits(at_config),
        "largest_micro_batch_per_device": largest,
        # Reached without a candidate failing: the chip may take more than this.
        "largest_is_search_limit": largest == limit,
        # Set when a larger candidate could not be compiled with the config's compiler options.
        "search_stopped_by": stopped,
        "roofline_s_per_micro_batch": roofline,
        "peak_tflops_per_chip": chip.peak_tflops,
        "hbm_gbps_per_chip": chip.hbm_gbps,
        # This host's peak resident memory so far (the compiles' high-water mark).
        "host_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
