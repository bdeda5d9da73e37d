"""What the held-out quality benches (`interpolation_quality.py`, `sr_quality.py`) share: their
common flags, held-out records through a stage's own transforms, and the results file."""

from __future__ import annotations

import argparse
import json
import os
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser, clips: int, json_name: str) -> None:
    """--checkpoints, --data_dir, --clips, --steps, --starts and --json."""
    parser.add_argument("--checkpoints", default=str(ROOT / "runs/quickstart/checkpoints"))
    parser.add_argument(
        "--data_dir", default="", help="default: beside CHECKPOINTS (the quickstart's)"
    )
    parser.add_argument("--clips", type=int, default=clips)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument(
        "--starts",
        default="",
        help="comma-separated start strengths to compare (default: each config's)",
    )
    parser.add_argument("--json", default=str(ROOT / "bench/results" / json_name))


def data_dir_of(args: argparse.Namespace) -> str:
    """--data_dir, or the quickstart's data beside --checkpoints."""
    return args.data_dir or str(pathlib.Path(args.checkpoints).parent / "data")


def number_list(text: str, default: float) -> list[float]:
    """A comma-separated flag (--starts, --consistency) as numbers; [default], the stage's own
    setting, when it is empty."""
    return [float(x) for x in text.split(",") if x] or [default]


def held_out_records(operations: list, dataset: str, data_dir: str, count: int) -> list[dict]:
    """The first `count` records of the dataset's `eval` split through `operations` (seeded)."""
    from mav_jax.data.loader import transform_record, video_source

    source = video_source(dataset, "eval", data_dir)
    rng = np.random.default_rng(0)
    return [transform_record(operations, source[i], rng) for i in range(min(count, len(source)))]


def write_results(path: str, clips: int, steps: int, results: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"clips": clips, "steps": steps, "results": results}, f, indent=1)
