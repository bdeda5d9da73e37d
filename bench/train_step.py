"""The keyframe stage's real train step (the trainer's: sharded, donated, EMA, AdamW) at the tiny
config, on 1 device and on 8 fake CPU devices with data- and fsdp-parallel meshes.

Reports steps/s, samples/s, TFLOP/s per device (XLA's cost analysis of the partitioned step over
the measured time) and the compiled step's per-device memory (XLA's memory analysis: arguments,
outputs, temporaries), so the cost of sharding on one host is visible. Each device count runs in
its own process, because JAX fixes the number of CPU devices when it starts.

    python bench/train_step.py
    python bench/train_step.py --meshes 1:data 8:data 8:fsdp --steps=10 --json=out.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def worker(devices: int, axis: str, steps: int, warmup: int) -> dict:
    import jax

    jax.config.update("jax_num_cpu_devices", devices)
    jax.config.update("jax_threefry_partitionable", True)
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from mav_jax.configs import keyframes
    from mav_jax.parallel import make_mesh
    from mav_jax.stages import stage_from_config
    from mav_jax.train.metrics import flops_per_device
    from mav_jax.train.step import make_train_step
    from mav_jax.train.weights import build_train_state

    config = keyframes.get_config("tiny")
    config.phase = "video"
    config.mesh = {"data": 1, "fsdp": 1, "tensor": 1, axis: devices}
    stage = stage_from_config(config)
    mesh = make_mesh(dict(config.mesh))
    graphdef, state, optimizer = build_train_state(config, stage, mesh)
    batch_size = config.train.global_batch_size
    rng = np.random.default_rng(0)
    shape = (batch_size, stage.num_frames, stage.resolution, stage.resolution, 3)
    batch = {
        "video": rng.uniform(-1, 1, shape).astype(np.float32),
        "fps": np.full((batch_size,), 12.0, np.float32),
    }
    step_fn = make_train_step(
        graphdef, stage, optimizer, mesh, state, batch, ema_decay=config.train.ema_decay
    )
    batch = jax.device_put(batch, step_fn.lower(state, batch).compile().input_shardings[0][1])
    began = time.perf_counter()
    compiled = step_fn.lower(state, batch).compile()
    compile_s = time.perf_counter() - began
    memory = compiled.memory_analysis()
    flops = flops_per_device(compiled)
    times = []
    for i in range(warmup + steps):
        began = time.perf_counter()
        state, metrics = compiled(state, batch)
        float(metrics["loss"])
        if i >= warmup:
            times.append(time.perf_counter() - began)
    seconds = statistics.median(times)
    params = sum(x.size for x in jax.tree.leaves(state.params))
    return {
        "devices": devices,
        "mesh": dict(mesh.shape),
        "params": int(params),
        "batch": batch_size,
        "clip": list(shape[1:]),
        "compile_s": compile_s,
        "steps_per_s": 1 / seconds,
        "samples_per_s": batch_size / seconds,
        "flops_per_device_per_step": flops,
        "tflops_per_device": flops / seconds / 1e12,
        "memory_per_device_bytes": {
            "arguments": memory.argument_size_in_bytes,
            "outputs": memory.output_size_in_bytes,
            "aliased": memory.alias_size_in_bytes,
            "temporaries": memory.temp_size_in_bytes,
        },
        "step_times_s": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--meshes",
        nargs="+",
        default=["1:data", "8:data", "8:fsdp"],
        help="DEVICES:AXIS, the axis all devices go to",
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        devices, axis = args.worker.split(":")
        print(json.dumps(worker(int(devices), axis, args.steps, args.warmup)))
        return

    rows = []
    for mesh in args.meshes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                f"--worker={mesh}",
                f"--steps={args.steps}",
                f"--warmup={args.warmup}",
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"host: {platform.processor() or platform.machine()} x{os.cpu_count()}")
    r0 = rows[0]
    print(
        f"keyframes tiny, video phase: {r0['params'] / 1e6:.2f}M params, batch {r0['batch']} "
        f"clips of {r0['clip']}"
    )
    print(
        f"{'mesh':<28}{'steps/s':>9}{'samples/s':>11}{'TFLOP/s/dev':>13}"
        f"{'args MiB':>10}{'temp MiB':>10}{'compile s':>11}"
    )
    for r in rows:
        mem = r["memory_per_device_bytes"]
        print(
            f"{json.dumps(r['mesh']):<28}{r['steps_per_s']:>9.3f}{r['samples_per_s']:>11.2f}"
            f"{r['tflops_per_device']:>13.5f}{mem['arguments'] / 2**20:>10.1f}"
            f"{mem['temporaries'] / 2**20:>10.1f}{r['compile_s']:>11.1f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "host": {"processor": platform.processor(), "cpu_count": os.cpu_count()},
                    "rows": rows,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
