"""Seconds per video through the tiny cascade on this machine, per stage, and the quickstart's wall
time per stage (from its timings.json).

Each stage is run once to compile, then timed over `--repeats` runs of a batch of `--videos`
prompts (block_until_ready after each stage), with the sampler steps the quickstart uses.

    python -m mav_jax.quickstart --workdir=runs/quickstart      # first: the tiny cascade
    python bench/sample.py --checkpoints=runs/quickstart/checkpoints [--videos=4] [--steps=50]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def timed(fn, repeats: int) -> float:
    """Best of `repeats` wall times of fn() (which blocks until its result is ready)."""
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=str(ROOT / "runs/quickstart/checkpoints"))
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=str(ROOT / "bench/results/sample.json"))
    args = parser.parse_args()

    import jax

    sys.path.insert(0, str(ROOT))
    from mav_jax.cascade import Cascade, SamplingOptions
    from mav_jax.configs.quickstart import PROMPTS
    from mav_jax.parallel import make_mesh

    cascade = Cascade.load(args.checkpoints, make_mesh({"data": -1}))
    options = SamplingOptions(seed=0, steps=args.steps)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.videos)]
    ready = jax.block_until_ready
    embeddings = ready(cascade.embed_prompts(prompts, options))
    keyframes = ready(cascade.keyframes(embeddings, options))
    video = ready(cascade.interpolate_keyframes(keyframes, embeddings, options))
    low = ready(cascade.upscale("sr_low", video, options))
    ready(cascade.upscale("sr_high", low, options))  # all compiled now

    stages = {
        "clip+prior": lambda: ready(cascade.embed_prompts(prompts, options)),
        "keyframes": lambda: ready(cascade.keyframes(embeddings, options)),
        "interpolation": lambda: ready(
            cascade.interpolate_keyframes(keyframes, embeddings, options)
        ),
        "sr_low": lambda: ready(cascade.upscale("sr_low", video, options)),
        "sr_high": lambda: ready(cascade.upscale("sr_high", low, options)),
    }
    per_video = {name: timed(fn, args.repeats) / args.videos for name, fn in stages.items()}
    timings_path = pathlib.Path(args.checkpoints).parent / "timings.json"
    quickstart = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    quickstart = quickstart.get("seconds", quickstart)  # older files: bare seconds per stage
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s)",
        "videos_per_batch": args.videos,
        "sampler_steps": args.steps,
        "seconds_per_video": per_video,
        "seconds_per_video_total": sum(per_video.values()),
        "quickstart_seconds_per_stage": quickstart,
    }
    print(json.dumps(result, indent=1))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
