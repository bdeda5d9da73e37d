"""One quickstart run's real train step on this host: its time, where that time goes, and what
reading its batches costs.

    python bench/quickstart_step.py --workdir=DIR --run=keyframes_video
    python bench/quickstart_step.py --workdir=DIR --run=clip --json=out.json

DIR is a quickstart workdir (`python -m mav_jax.quickstart --workdir=DIR`): its datasets, and the
CLIP export that conditioned runs embed their batches with. The step is the trainer's (its
shardings, donation, EMA and optimizer) on as many host devices as the quickstart uses, timed on
one fixed batch. Reported: ms per step (median); ms per batch to read it (Grain, one read
thread, as the quickstart), to put it on the devices and to condition it (the frozen CLIP); and,
from a `jax.profiler` trace of a few steps, ms per step and device of each kind of XLA:CPU op
(fusion kinds with their numbers stripped; collectives by name). Run it alone.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import pathlib
import re
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Trace events that wrap others (a whole program, a rendezvous inside a collective): not counted.
_WRAPPERS = re.compile(r"ThunkExecutor|Wait|Rendezvous|Execute|ParseArguments|Handle inputs")


def op_times(trace_path: pathlib.Path, steps: int, devices: int) -> dict[str, float]:
    """ms per step and device of each op kind on XLA's threads, from a perfetto trace."""
    events = json.load(gzip.open(trace_path))
    events = events["traceEvents"] if isinstance(events, dict) else events
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    totals: collections.Counter = collections.Counter()
    for e in events:
        thread = threads.get((e.get("pid"), e.get("tid")), "")
        if e.get("ph") != "X" or "XLA" not in thread or _WRAPPERS.search(e["name"]):
            continue
        totals[re.sub(r"\.\d+$", "", e["name"])] += e["dur"] / 1000
    return {name: ms / steps / devices for name, ms in totals.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a quickstart workdir")
    parser.add_argument("--run", default="keyframes_video", help="a quickstart run's name")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--traced_steps", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from configs import quickstart
    from mav_jax.parallel.host_devices import use_host_cores

    runs = dict(quickstart.stages(f"{args.workdir}/data", args.workdir))
    if args.run not in runs:
        parser.error(f"--run must be one of {', '.join(runs)}; got {args.run}")
    config = runs[args.run]
    needed = [f"{args.workdir}/data"] + [config[k] for k in ("clip_from",) if config.get(k)]
    missing = [path for path in needed if not pathlib.Path(path).is_dir()]
    if missing:
        parser.error(
            f"{', '.join(missing)} not found: run `python -m mav_jax.quickstart "
            f"--workdir={args.workdir}` first (its datasets and CLIP export are what this times)"
        )
    use_host_cores([config.train.global_batch_size])

    import jax

    from mav_jax.data.loader import global_batch, make_loader, video_source
    from mav_jax.parallel import make_mesh, rules_from_config
    from mav_jax.parallel.mesh_context import use_mesh
    from mav_jax.stages import stage_from_config
    from mav_jax.train.step import train_step_from_config
    from mav_jax.train.weights import build_train_state

    stage = stage_from_config(config)
    mesh = make_mesh(dict(config.mesh))
    batch_size = config.train.global_batch_size
    with use_mesh(mesh, rules_from_config(config)):
        graphdef, state, optimizer = build_train_state(config, stage, mesh)
        loader = make_loader(
            video_source(config.data.dataset, stage.split, config.data.data_dir),
            stage.operations(),
            batch_size=batch_size,
            seed=config.seed,
            worker_count=0,
            read_threads=config.data.read_threads,
            prefetch_buffer_size=config.data.prefetch_buffer_size,
        )
        iterator, condition = iter(loader), stage.conditioner(mesh)
        batch = condition(global_batch(next(iterator), mesh))
        began = time.perf_counter()
        step = train_step_from_config(config, graphdef, stage, optimizer, mesh, state, batch)
        compiled = step.lower(state, batch).compile()
        compile_s = time.perf_counter() - began

        times = []
        for i in range(args.steps + 3):
            began = time.perf_counter()
            state, metrics = compiled(state, batch)
            float(metrics["loss"])
            if i >= 3:  # the first steps warm caches and thread pools
                times.append(1000 * (time.perf_counter() - began))

        read, put, conditioned = [], [], []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            local = next(iterator)
            t1 = time.perf_counter()
            placed = jax.block_until_ready(global_batch(local, mesh))
            t2 = time.perf_counter()
            jax.block_until_ready(condition(placed))
            t3 = time.perf_counter()
            read.append(1000 * (t1 - t0))
            put.append(1000 * (t2 - t1))
            conditioned.append(1000 * (t3 - t2))

        with tempfile.TemporaryDirectory() as trace_dir:
            with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
                for _ in range(args.traced_steps):
                    state, metrics = compiled(state, batch)
                float(metrics["loss"])
            trace = next(pathlib.Path(trace_dir).rglob("perfetto_trace.json.gz"))
            ops = op_times(trace, args.traced_steps, mesh.size)

    result = {
        "run": args.run,
        "devices": mesh.size,
        "global_batch": batch_size,
        "compile_s": round(compile_s, 1),
        "ms_per_step": round(statistics.median(times), 1),
        "ms_per_batch": {
            "read": round(statistics.median(read), 1),
            "put": round(statistics.median(put), 1),
            "condition": round(statistics.median(conditioned), 1),
        },
        "traced_ms_per_step_and_device": {k: round(v, 2) for k, v in ops.items() if v >= 0.5},
    }
    print(json.dumps(result, indent=1))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
