"""python -m mav_jax.plan --config=configs/<stage>.py:paper --mesh=fsdp:64 [--chip=v5p]

Will a config fit the chips? Compiles the stage's real train step ahead of time on a simulated
CPU mesh of the requested size, with abstract inputs (no parameter memory is allocated), and
reports the parameter count, FLOPs per device per step, XLA's per-device memory (arguments,
outputs, temporaries), the largest per-device batch that fits each HBM size, and the step time
projected at a stated fraction of the chip's peak.

Memory is measured at per-device batches 1 and 2 and extrapolated linearly (arguments are the
state, temporaries grow with the batch). Two fits are reported. `largest_per_device_batch` uses
XLA:CPU's temporaries, an upper bound: XLA:CPU does not honour remat in an unrolled network (20
rematted blocks: 480 MiB of temporaries against 328 MiB without remat; the same blocks in a
`lax.scan`: 194 against 834 MiB). `largest_per_device_batch_with_remat` uses the activations
JAX saves for the backward pass (the `jax.vjp` residuals, which remat does shrink) plus the exact
per-device state, leaving `--headroom` of HBM free: the estimate to plan a TPU run with.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys

from absl import app, flags
from ml_collections import config_flags

from mav_jax.parallel.sharding import batch_shards, parse_mesh
from mav_jax.train.abstract_state import abstract_train_state, example_batch, lower_train_step
from mav_jax.train.model_flops import PEAK_TFLOPS

# bf16 dense peak per chip, TFLOP/s (cited in train.model_flops.PEAK_TFLOPS).
CHIP_PEAK_TFLOPS = {
    "v4": PEAK_TFLOPS["TPU v4"],
    "v5e": PEAK_TFLOPS["TPU v5e"],
    "v5p": PEAK_TFLOPS["TPU v5p"],
    "v6e": PEAK_TFLOPS["TPU v6e"],
}
GIB = 2**30


@dataclasses.dataclass(frozen=True)
class StepPlan:
    mesh: dict
    per_device_batch: int
    params: int
    flops_per_device: float
    argument_bytes: int
    output_bytes: int
    alias_bytes: int
    temp_bytes: int

    @property
    def peak_bytes(self) -> int:
        """Live bytes at the peak: arguments + temporaries + outputs not aliased to arguments."""
        return self.argument_bytes + self.temp_bytes + max(self.output_bytes - self.alias_bytes, 0)


def _bytes(tree) -> int:
    import jax

    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _per_device_bytes(tree) -> int:
    """Bytes one device holds of a tree of sharded ShapeDtypeStructs (the largest shard)."""
    import jax

    return sum(
        math.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree)
    )


def plan_step(config, mesh_shape: dict, per_device_batch: int, compile: bool = True) -> StepPlan:
    """The train step for `per_device_batch` examples per batch shard, compiled (XLA's FLOPs and
    memory) or, with `compile=False`, only lowered: FLOPs from the unpartitioned HLO divided by the
    device count, the state's per-device bytes from its shardings, no temporaries. Nothing runs."""
    import jax

    from mav_jax.parallel import make_mesh
    from mav_jax.stages import stage_from_config
    from mav_jax.train.metrics import flops_per_device

    stage = stage_from_config(config)
    mesh = make_mesh(mesh_shape)
    lowered, state, batch = lower_train_step(config, stage, mesh, per_device_batch)
    params = sum(math.prod(x.shape) for x in jax.tree.leaves(state.params))
    if not compile:
        cost = lowered.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return StepPlan(
            mesh=dict(mesh.shape),
            per_device_batch=per_device_batch,
            params=params,
            flops_per_device=float(cost["flops"]) / mesh.size,
            argument_bytes=_per_device_bytes(state) + _bytes(batch) // batch_shards(mesh),
            output_bytes=0,
            alias_bytes=0,
            temp_bytes=0,
        )
    compiled = lowered.compile()
    memory = compiled.memory_analysis()
    return StepPlan(
        mesh=dict(mesh.shape),
        per_device_batch=per_device_batch,
        params=params,
        flops_per_device=flops_per_device(compiled),
        argument_bytes=memory.argument_size_in_bytes,
        output_bytes=memory.output_size_in_bytes,
        alias_bytes=memory.alias_size_in_bytes,
        temp_bytes=memory.temp_size_in_bytes,
    )


def saved_activation_bytes(config, mesh_shape: dict) -> float:
    """Per-device bytes the backward pass keeps per extra example, from JAX itself: the residuals
    of `jax.vjp` of the loss (what remat decides to store), traced abstractly, at per-device batch
    1 and 2. XLA:CPU's buffer assignment does not honour remat in unrolled networks (it schedules
    the recomputation early), so its temporaries overstate what a TPU, which does, needs."""
    import jax
    from flax import nnx

    from mav_jax.parallel import make_mesh
    from mav_jax.stages import stage_from_config

    stage = stage_from_config(config)
    mesh = make_mesh(mesh_shape)
    graphdef, state, _ = abstract_train_state(config, stage, mesh)
    shards = batch_shards(mesh)

    def residual_bytes(per_device_batch: int) -> int:
        batch = example_batch(stage, per_device_batch * shards)

        def backward_closure(params, batch, key_data):
            loss = lambda p: stage.loss(
                nnx.merge(graphdef, p),
                batch,  # noqa: E731
                jax.random.wrap_key_data(key_data),
            )[0]
            return jax.vjp(loss, params)[1]

        key = jax.ShapeDtypeStruct((2,), "uint32")
        closure = jax.eval_shape(backward_closure, state.params, batch, key)
        return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(closure))

    return (residual_bytes(2) - residual_bytes(1)) / shards


def batch_shards_of(mesh_shape: dict) -> int:
    return mesh_shape.get("data", 1) * mesh_shape.get("fsdp", 1)


def model_flops_per_example(config, mesh_shape: dict) -> float:
    """The stage's model FLOPs per training example (train.model_flops), from abstract inputs."""
    from mav_jax.parallel import make_mesh
    from mav_jax.stages import stage_from_config
    from mav_jax.train.model_flops import train_step_model_flops

    stage = stage_from_config(config)
    graphdef, state, _ = abstract_train_state(config, stage, make_mesh(mesh_shape))
    return train_step_model_flops(stage, graphdef, state.params, example_batch(stage, 1))


def largest_batch_with_remat(
    argument_bytes: float, per_example: float, hbm_bytes: float, headroom: float
) -> int:
    """Largest per-device batch when the state (XLA's argument bytes) and the saved activations
    fill at most (1 - headroom) of HBM; the headroom is for one block's recomputation, gradients
    in flight and collective buffers."""
    return max(int((hbm_bytes * (1 - headroom) - argument_bytes) // max(per_example, 1)), 0)


def largest_batch(one: StepPlan, two: StepPlan, hbm_bytes: float) -> int:
    """Largest per-device batch whose linearly extrapolated peak memory fits `hbm_bytes`."""
    per_example = max(two.peak_bytes - one.peak_bytes, 1)
    fixed = one.peak_bytes - per_example
    return max(int((hbm_bytes - fixed) // per_example), 0)


_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config file and variant.")
_MESH = flags.DEFINE_string("mesh", "fsdp:8", "Simulated mesh, AXIS:SIZE[,AXIS:SIZE...].")
_CHIP = flags.DEFINE_enum("chip", "v5p", sorted(CHIP_PEAK_TFLOPS), "Chip for the projection.")
_UTILISATION = flags.DEFINE_float("utilisation", 0.4, "Fraction of peak FLOP/s assumed.")
_HBM = flags.DEFINE_list("hbm_gib", ["16", "32", "95"], "HBM sizes (GiB) to fit the batch to.")
_JSON = flags.DEFINE_string("json", "", "Also write the figures to this file.")
_HEADROOM = flags.DEFINE_float("headroom", 0.25, "HBM fraction the remat-aware fit leaves free.")
_COMPILE = flags.DEFINE_bool(
    "compile",
    True,
    "Compile for XLA's memory analysis (slow at paper "
    "scale: 10-30 min); --nocompile lowers only (about a minute).",
)
_TOPOLOGY = flags.DEFINE_string(
    "topology", "", "Compile for this TPU topology with the TPU compiler (e.g. v5e:8x8)."
)
_SLICES = flags.DEFINE_integer("num_slices", 1, "With --topology: slices joined over DCN.")
_SEARCH = flags.DEFINE_bool(
    "search_batch", True, "With --topology: find the largest micro-batch that fits by compiling."
)
flags.mark_flags_as_required(["config"])


def main(argv) -> None:
    del argv
    mesh = parse_mesh(_MESH.value)
    import jax

    jax.config.update("jax_platforms", "cpu")
    if _TOPOLOGY.value:  # the TPU compiler's figures, from compile-only TPU devices
        from mav_jax.plan_tpu import PlanError, plan_on_topology

        try:
            report = plan_on_topology(
                _CONFIG.value, mesh, _TOPOLOGY.value, _SLICES.value, _SEARCH.value
            )
        except (PlanError, ValueError) as error:  # bad topology, mesh, config or compiler options
            sys.exit(f"mav_jax.plan: {error}")
        json.dump(report, sys.stdout, indent=1)
        print()
        if _JSON.value:
            with open(_JSON.value, "w") as f:
                json.dump(report, f, indent=1)
        return
    # The simulated mesh: one fake CPU device per chip (must be set before JAX starts).
    jax.config.update("jax_num_cpu_devices", math.prod(mesh.values()))
    config = _CONFIG.value
    try:
        one, two = (plan_step(config, mesh, b, compile=_COMPILE.value) for b in (1, 2))
    except ValueError as error:
        sys.exit(f"mav_jax.plan: {error}")
    peak = CHIP_PEAK_TFLOPS[_CHIP.value] * 1e12 * _UTILISATION.value
    per_device = config.train.global_batch_size / batch_shards_of(mesh)
    flops_per_example = two.flops_per_device - one.flops_per_device
    step_flops = one.flops_per_device + flops_per_example * (per_device - 1)
    fits = (
        {f"{g} GiB": largest_batch(one, two, float(g) * GIB) for g in _HBM.value}
        if _COMPILE.value
        else None
    )
    model_flops = model_flops_per_example(config, mesh)
    xla_flops = flops_per_example * math.prod(mesh.values()) / batch_shards_of(mesh)
    saved = saved_activation_bytes(config, mesh)
    fits_remat = {
        f"{g} GiB": largest_batch_with_remat(
            one.argument_bytes, saved, float(g) * GIB, _HEADROOM.value
        )
        for g in _HBM.value
    }
    report = {
        "stage": config.stage,
        "variant": config.get("variant", ""),
        "mesh": one.mesh,
        "params": one.params,
        "gflops_per_device_per_example": flops_per_example / 1e9,
        # The model's own FLOPs per example (3 x forward, no remat: train.model_flops), and the
        # highest MFU the step can reach: model FLOPs over what XLA runs (remat recomputes).
        "model_gflops_per_example": model_flops / 1e9,
        # (XLA skips a SAME convolution's padded taps, so without remat the ratio can top 1.)
        "mfu_bound": min(1.0, model_flops / xla_flops) if xla_flops else None,
        "memory_gib_at_batch_1": {
            "arguments": one.argument_bytes / GIB,
            "temporaries": one.temp_bytes / GIB if _COMPILE.value else None,
            "peak": one.peak_bytes / GIB if _COMPILE.value else None,
        },
        "memory_gib_per_extra_example": (
            (two.peak_bytes - one.peak_bytes) / GIB if _COMPILE.value else None
        ),
        "largest_per_device_batch": fits,  # XLA:CPU's temporaries: an upper bound
        "saved_activations_gib_per_example": saved / GIB,  # JAX's vjp residuals: remat-aware
        "largest_per_device_batch_with_remat": fits_remat,
        "headroom": _HEADROOM.value,
        "config_per_device_batch": per_device,
        "projected_step_s": step_flops / peak,
        "projection": f"{_CHIP.value} at {_UTILISATION.value:.0%} of {CHIP_PEAK_TFLOPS[_CHIP.value]:.0f} TFLOP/s",
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    if _JSON.value:
        with open(_JSON.value, "w") as f:
            json.dump(report, f, indent=1)


def cli() -> None:
    """Console-script entry point; `--config` takes a file path or a stage name (keyframes:paper)."""
    from mav_jax.configs import resolve_config_args

    app.run(main, argv=resolve_config_args(sys.argv))


if __name__ == "__main__":
    cli()
