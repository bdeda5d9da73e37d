"""FVD feature throughput: videos per second through resize + I3D at 16 frames, 1 vs N devices.

    python bench/fvd.py                    # 1 device and 8 fake CPU devices
    python bench/fvd.py --videos=32 --size=64

The 8-device run uses fake CPU devices (`jax_num_cpu_devices`), which share this host's cores: it
shows the sharded path works and what it costs here, not a speed-up. On a TPU slice the same
code splits each batch over the chips.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def measure(num_devices: int, videos: int, frames: int, size: int, repeats: int) -> dict:
    import jax

    jax.config.update("jax_num_cpu_devices", num_devices)
    import numpy as np

    from mav_jax.eval.fvd import I3DFeatures
    from mav_jax.models.i3d_weights import load_i3d

    extractor = I3DFeatures(load_i3d())
    clips = np.random.default_rng(0).integers(0, 256, (videos, frames, size, size, 3), np.uint8)
    start = time.perf_counter()
    extractor(clips)  # compile + first run
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        extractor(clips)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "devices": extractor.num_devices,
        "videos": videos,
        "frames": frames,
        "size": size,
        "compile_and_first_s": first,
        "seconds_per_batch": seconds,
        "videos_per_s": videos / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=16, help="clips per batch")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="source resolution (resized to 224)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one count
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.videos, args.frames, args.size, args.repeats)))
        return
    results = []
    for count in args.devices:  # a fresh process each: the device count is fixed at JAX start-up
        child = [
            sys.executable,
            __file__,
            f"--one={count}",
            f"--videos={args.videos}",
            f"--frames={args.frames}",
            f"--size={args.size}",
            f"--repeats={args.repeats}",
        ]
        out = subprocess.run(child, capture_output=True, text=True, check=True, env=os.environ)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"{result['devices']} device(s): {result['videos_per_s']:.2f} videos/s "
            f"({result['videos']} x {result['frames']} frames at {result['size']}px -> 224px; "
            f"compile + first batch {result['compile_and_first_s']:.1f}s)"
        )


if __name__ == "__main__":
    main()
