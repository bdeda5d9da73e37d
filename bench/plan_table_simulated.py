"""The simulated paper-scale plan (fake CPU devices): `python -m mav_jax.plan --nocompile` for
every stage's `paper` config on a 64-chip fsdp mesh, then, per TPU type, the largest per-device
batch that fits its HBM (remat-aware) and the step time at the config's global batch.

    python bench/plan_table_simulated.py [--mesh=fsdp:64] \
        [--json=bench/results/plan_table_simulated.json]

A per-device micro-batch smaller than the config's per-device batch means gradient accumulation
(`--config.train.grad_accum_steps`); the FLOPs per step, hence the projected time, are unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

from plan_table import openai_bpe  # this folder: the compiler's table

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHIPS = {"v4": 32, "v5e": 16, "v5p": 95}  # HBM GiB per chip
STAGES = {  # stage config -> extra flags the paper variant needs to plan without real files
    "clip": ["--config.clip_tokenizer={bpe}"],
    "prior": ["--config.clip_tokenizer={bpe}"],
    "keyframes": ["--config.phase=video"],
    "interpolation": [],
    "sr_low": [],
    "sr_high": [],
}


def plan(stage: str, mesh: str, bpe: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        flags = [f.format(bpe=bpe) for f in STAGES[stage]]
        command = [
            sys.executable,
            "-m",
            "mav_jax.plan",
            f"--config=configs/{stage}.py:paper",
            f"--mesh={mesh}",
            "--nocompile",
            "--hbm_gib=16,32,95",
            f"--json={out.name}",
            *flags,
        ]
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        return json.loads(pathlib.Path(out.name).read_text())


def table(plans: dict) -> str:
    from mav_jax.plan import CHIP_PEAK_TFLOPS

    head = (
        "| stage | params | GFLOP / example | state GiB / chip | saved activations GiB / example "
        "| " + " | ".join(f"{c} ({h} GiB): batch / chip, step s" for c, h in CHIPS.items()) + " |"
    )
    rows = [head, "|" + "---|" * (5 + len(CHIPS))]
    for stage, p in plans.items():
        per_device = p["config_per_device_batch"]
        flops = p["gflops_per_device_per_example"] * 1e9 * per_device
        cells = []
        for chip, hbm in CHIPS.items():
            fit = p["largest_per_device_batch_with_remat"][f"{hbm} GiB"]
            seconds = flops / (CHIP_PEAK_TFLOPS[chip] * 1e12 * 0.4)
            accumulate = math.ceil(per_device / fit) if fit else None
            cells.append(
                f"{fit}, {seconds:.2f}"
                + (f" (accum {accumulate})" if accumulate and accumulate > 1 else "")
                if fit
                else "does not fit"
            )
        rows.append(
            f"| {stage} | {p['params'] / 1e6:,.0f}M | {p['gflops_per_device_per_example']:,.0f} "
            f"| {p['memory_gib_at_batch_1']['arguments']:.2f} "
            f"| {p['saved_activations_gib_per_example']:.2f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default="fsdp:64")
    parser.add_argument("--json", default=str(ROOT / "bench/results/plan_table_simulated.json"))
    parser.add_argument(
        "--stages",
        nargs="*",
        default=list(STAGES),
        help="Re-plan only these; the others come from --json.",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    bpe = openai_bpe()
    plans = json.loads(pathlib.Path(args.json).read_text()) if os.path.exists(args.json) else {}
    for stage in args.stages:
        plans[stage] = plan(stage, args.mesh, bpe)
        print(f"planned {stage}", file=sys.stderr, flush=True)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(plans, f, indent=1)
    print(table({stage: plans[stage] for stage in STAGES if stage in plans}))


if __name__ == "__main__":
    main()
