"""The paper-scale plan table from the TPU compiler: every paper stage's real train step compiled
for 64-chip slices of v4, v5e, v5p and v6e (`python -m mav_jax.plan --topology`), on this CPU host,
with nothing allocated. (`bench/plan_table_simulated.py` makes the older fake-CPU-device estimate,
which `bench/ingest.py` reads.)

    pip install -e '.[plan]'
    python bench/plan_table.py [--families=v5e,v6e] [--stages=keyframes_video,sr_low] \
        [--json=bench/results/plan_table.json]

Each stage is compiled at one example per batch shard per micro-batch (the config's global batch
is reached by gradient accumulation, which does not change the per-chip memory), on `fsdp` x
`context` with the context named in STAGES (a video's frames split over that many chips); results
accumulate in --json, so a run may re-plan a few cells and keep the rest. The config's
`train.tpu_compiler_options` apply, as in training.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOPOLOGIES = {"v4": "v4:4x4x4", "v5e": "v5e:8x8", "v5p": "v5p:4x4x4", "v6e": "v6e:8x8"}
# stage -> (config file, extra flags, context axis: frames split per clip). The CLIP tokenizer
# flag only names a file; the plan never reads it.
STAGES = {
    "clip": ("clip", ["--config.clip_tokenizer={bpe}"], 1),
    "prior": ("prior", ["--config.clip_tokenizer={bpe}"], 1),
    "keyframes_image": ("keyframes", [], 1),
    "keyframes_video": ("keyframes", ["--config.phase=video"], 16),
    "interpolation": ("interpolation", [], 4),
    "sr_low": ("sr_low", [], 16),
    "sr_high": ("sr_high", [], 1),
}


# The most ways parameters split; the rest of the devices go to `data`. Compiled D (image phase)
# per fsdp width: docs/results.md ("fsdp stops at 32 ways").
MAX_FSDP = 32


def openai_bpe() -> str:
    """OpenAI's vocabulary file, which the open_clip wheel ships (only its name matters here; the
    package is located, not imported, so its torch dependencies need not be installed)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        sys.exit(
            "pip install --no-deps open_clip_torch (its BPE vocabulary names CLIP's tokenizer)"
        )
    return os.path.join(spec.submodule_search_locations[0], "bpe_simple_vocab_16e6.txt.gz")


def device_count(topology: str) -> int:
    """The topology's compile-only device count (v4 shows 2 per chip), asked in a child process:
    a process that has built a topology holds libtpu's lockfile, and the plan's would then fail."""
    code = (
        f"from mav_jax.plan_tpu import topology_devices; print(len(topology_devices({topology!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def slice_mesh(devices: int, context: int) -> str:
    """--mesh for `devices` with each clip's frames over `context`: the batch shards over fsdp up
    to MAX_FSDP ways (the largest width that divides them), the rest over data."""
    shards = devices // context
    fsdp = max(w for w in range(1, min(shards, MAX_FSDP) + 1) if shards % w == 0)
    mesh = f"data:{shards // fsdp}," if shards > fsdp else ""
    return mesh + f"fsdp:{fsdp}" + (f",context:{context}" if context > 1 else "")


def plan(stage: str, family: str, bpe: str, search: bool) -> dict:
    config, extra, context = STAGES[stage]
    topology = TOPOLOGIES[family]
    devices = device_count(topology)
    mesh = slice_mesh(devices, context)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            *(sys.executable, "-m", "mav_jax.plan", f"--config=configs/{config}.py:paper"),
            *(f"--topology={topology}", f"--mesh={mesh}", f"--json={out.name}"),
            # One example per chip per micro-batch.
            f"--config.train.global_batch_size={devices // context}",
            f"--search_batch={search}",
            *(flag.format(bpe=bpe) for flag in extra),
        ]
        began = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            return {"error": done.stderr.strip().splitlines()[-1], "command": " ".join(command)}
        report = json.loads(pathlib.Path(out.name).read_text())
    report["wall_s"] = time.perf_counter() - began
    report["command"] = " ".join(command[1:]).replace(bpe, "BPE") if bpe else " ".join(command[1:])
    return report


def table(plans: dict) -> str:
    head = (
        "| stage | slice | mesh | per-chip peak GiB / HBM | fits | largest micro-batch "
        "| TFLOP / step / chip | roofline s | compile s | host GiB |"
    )
    rows = [head, "|" + "---|" * 10]
    for key, p in plans.items():
        stage, family = key.split("@")
        if "error" in p:
            rows.append(f"| {stage} | {TOPOLOGIES[family]} | | error: {p['error'][:80]} |||||||")
            continue
        mesh = ",".join(f"{a}:{n}" for a, n in p["mesh"].items())
        largest = p["largest_micro_batch_per_device"]
        if largest is not None and p.get("largest_is_search_limit"):
            largest = f">= {largest}"  # every candidate up to the search's limit fitted
        roofline = p["roofline_s_per_micro_batch"]
        flops = p.get("flops")
        rows.append(
            f"| {stage} | {p['topology']} | {mesh} | {p['peak_gib'] or 0:.2f} / "
            f"{p['hbm_gib_per_device']:.0f} | {'yes' if p['fits'] else 'no'} "
            f"| {'-' if largest is None else largest} "
            f"| {'-' if flops is None else f'{flops / 1e12:.2f}'} "
            f"| {'-' if roofline is None else f'{roofline:.3f}'} | {p['compile_s']:.0f} "
            f"| {p['host_peak_rss_gib']:.1f} |"
        )
    return "\n".join(rows)


def matrix(plans: dict) -> str:
    """README's compact form: a row per stage, a column per family, each cell "peak / HBM GiB,
    compile s" (the full figures are in `table`)."""
    families = [f for f in TOPOLOGIES if any(k.endswith(f"@{f}") for k in plans)]
    head = "| stage | context | " + " | ".join(TOPOLOGIES[f] for f in families) + " |"
    rows = [head, "|" + "---|" * (len(families) + 2)]
    for stage, (_, _, context) in STAGES.items():
        cells = []
        for family in families:
            p = plans.get(f"{stage}@{family}")
            if p is None:
                cells.append("not run")
            elif "error" in p:
                cells.append("error")
            else:
                fits = "" if p["fits"] else " (does not fit)"
                cells.append(
                    f"{p['peak_gib'] or 0:.1f} / {p['hbm_gib_per_device']:.0f}{fits}, "
                    f"{p['compile_s']:.0f} s"
                )
        rows.append(f"| {stage} | {context} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(TOPOLOGIES))
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--search_batch", action="store_true", help="find the largest micro-batch")
    parser.add_argument("--json", default=str(ROOT / "bench/results/plan_table.json"))
    args = parser.parse_args()
    os.environ["JAX_PLATFORMS"] = "cpu"
    sys.path.insert(0, str(ROOT))
    stages, families = args.stages.split(","), args.families.split(",")
    if unknown := [s for s in stages if s not in STAGES] + [
        f for f in families if f not in TOPOLOGIES
    ]:
        parser.error(f"unknown {unknown}: stages are {list(STAGES)}, families {list(TOPOLOGIES)}")
    # Only CLIP's and the prior's configs name the tokenizer file.
    bpe = openai_bpe() if {"clip", "prior"} & set(stages) else ""
    plans = json.loads(pathlib.Path(args.json).read_text()) if os.path.exists(args.json) else {}
    for family in families:
        for stage in stages:
            plans[f"{stage}@{family}"] = plan(stage, family, bpe, args.search_batch)
            print(f"planned {stage} on {TOPOLOGIES[family]}", file=sys.stderr, flush=True)
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(plans, f, indent=1)
    print(table(dict(sorted(plans.items()))))
    print()
    print(matrix(plans))


if __name__ == "__main__":
    main()
