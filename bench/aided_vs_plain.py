"""The quickstart's checkpoints sampled with its sampling aids and without them, as the paper samples.

    python bench/aided_vs_plain.py --checkpoints=runs/quickstart/checkpoints \
        [--steps=50] [--sheet=docs/aided_vs_plain.png]

The same prompts (the `eval` split's captions) through the whole cascade, CLIP to SR_h, twice:
"aided" with the quickstart configs' sampling settings, "plain" with every aid off
(`SamplingOptions.plain`: one keyframe pass from independent frame noise, ↑F and the SR stages
from pure noise, no hold to the low-resolution input, one candidate). Each set is judged
- by bench/prompt_fidelity.py's readers, on the 64x64 videos box-downsampled to the keyframes'
  16x16, against the digit and colour each caption names: digit and colour per frame, the same
  digit across a video, shape consistency (the same glyph from frame to frame), motion;
- by FVD against the `eval` clips (their first 13 frames, at their 32x32; the generated videos
  box-downsampled to 32x32), through `python -m mav_jax.fvd`. With 32 videos a side, FVD is
  noisy: compare the two settings with each other, not with published numbers.
`--sheet` writes one prompt's final frames for both settings, aided above plain, as a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import prompt_fidelity  # noqa: E402  (bench/, beside this file)

SHEET_PROMPT = "a red 3 moving right"  # the quickstart's first prompt


def box_downsample(videos: np.ndarray, size: int) -> np.ndarray:
    """(N, F, H, W, 3) -> (N, F, size, size, 3): each pixel the mean of its block."""
    n, f, h, w, c = videos.shape
    k = h // size
    return videos.reshape(n, f, size, k, size, k, c).mean(axis=(3, 5))


def fvd(real: str, fake: np.ndarray, out_dir: str, name: str, data_dir: str, frames: int) -> dict:
    """FVD of `fake` (N, F, H, W, 3) uint8 against `real`, through the mav_jax.fvd CLI."""
    fake_path = os.path.join(out_dir, f"{name}.npz")
    np.savez(fake_path, videos=fake)
    record = os.path.join(out_dir, f"fvd_{name}.json")
    real_stats = os.path.join(out_dir, "eval.stats.npz")
    cached = os.path.exists(real_stats)
    command = [
        sys.executable,
        "-m",
        "mav_jax.fvd",
        f"--real={real_stats if cached else real}",
        f"--fake={fake_path}",
        f"--num_videos={len(fake)}",
        f"--num_frames={frames}",
        "--clip_sampling=first",
        f"--output_json={record}",
    ] + ([] if cached else [f"--save_real_stats={real_stats}"])
    env = {**os.environ, "TFDS_DATA_DIR": data_dir}
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    with open(record) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=str(ROOT / "runs/quickstart/checkpoints"))
    parser.add_argument("--data_dir", default="", help="default: beside CHECKPOINTS")
    parser.add_argument("--steps", type=int, default=50, help="sampler steps per stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", default="", help="PNG of one prompt, aided above plain")
    parser.add_argument("--out_dir", default=str(ROOT / "bench/results/aided_vs_plain"))
    args = parser.parse_args()
    import tensorflow_datasets as tfds

    from mav_jax.cascade import Cascade, SamplingOptions
    from mav_jax.data.loader import video_source
    from mav_jax.data.moving_digits import SPLIT_SEEDS
    from mav_jax.parallel import make_mesh
    from mav_jax.stages import to_uint8

    data_dir = args.data_dir or str(pathlib.Path(args.checkpoints).parent / "data")
    os.makedirs(args.out_dir, exist_ok=True)
    cascade = Cascade.load(args.checkpoints, make_mesh({"data": -1}))
    keyframes = cascade.stages["keyframes"]
    dataset = keyframes.config.data.dataset
    source = video_source(dataset, "eval", data_dir)
    records = [source[i] for i in range(len(source))]
    captions = [r["caption"].decode() for r in records]
    targets = [(prompt_fidelity.COLOUR_NAMES[int(r["color"])], int(r["digit"])) for r in records]
    resolution = keyframes.stage.resolution
    frame_size = tfds.builder(dataset, data_dir=data_dir).builder_config.frame_size  # the clips'
    eval_seeds = range(SPLIT_SEEDS["eval"], SPLIT_SEEDS["eval"] + len(records))
    reader = prompt_fidelity.digit_reader(resolution, frame_size, eval_seeds)

    aided = SamplingOptions(seed=args.seed, steps=args.steps)
    settings = {"aided": aided, "plain": aided.plain()}
    result = {"checkpoints": args.checkpoints, "sampler_steps": args.steps, "videos": len(records)}
    sheet_rows = []
    for name, options in settings.items():
        outputs = cascade.text_to_video([*captions, SHEET_PROMPT], options)
        videos = np.asarray(to_uint8(outputs["sr_high"]))  # (N + 1, F, 64, 64, 3)
        sheet_rows.append(videos[-1])
        videos = videos[:-1]
        small = box_downsample(videos.astype(np.float32), resolution) / 127.5 - 1
        scores = prompt_fidelity.fidelity(reader, small, targets)
        frames = videos.shape[1]
        at_real = np.round(box_downsample(videos.astype(np.float32), frame_size)).astype(np.uint8)
        record = fvd(f"tfds:{dataset}:eval", at_real, args.out_dir, name, data_dir, frames)
        result[name] = {**scores, "fvd": record["fvd"], "settings": options.given()}
        print(name, json.dumps(result[name]), flush=True)
    with open(os.path.join(args.out_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    if args.sheet:
        from PIL import Image

        from mav_jax.data.video_io import contact_sheet

        gap = np.zeros((4, *contact_sheet(sheet_rows[0][None]).shape[1:]), np.uint8)
        sheet = np.concatenate(
            [contact_sheet(sheet_rows[0][None]), gap, contact_sheet(sheet_rows[1][None])]
        )
        os.makedirs(os.path.dirname(os.path.abspath(args.sheet)), exist_ok=True)
        # 64 colours: the same picture in a third of the bytes, small enough for README.
        Image.fromarray(sheet).quantize(64).save(args.sheet, optimize=True)
    print(json.dumps({k: v for k, v in result.items() if k not in settings}, indent=1))


if __name__ == "__main__":
    main()
