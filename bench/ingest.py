"""The input side: how frames are stored, how fast a build and the loader run per CPU core, and
how many host cores feed one TPU host at the step times the plan tool gives.

    python bench/ingest.py [--plan_json=bench/results/plan_table_simulated.json] \
        [--json=bench/results/ingest.json]

Source video: a 640x360, 30 fps H.264 camera pan (libx264, crf 23, as web video is; encoded by
the builds' own `media.encode_segment`) over
scikit-learn's two bundled photographs, so frames have natural-image statistics; nothing is
downloaded. Everything runs pinned to one core (`os.sched_setaffinity`), so figures are per core.

1. Storage of one 76-frame clip at 64 and 256 pixels: PNG per frame, JPEG per frame (quality 90,
   what builds write), an H.264 segment (crf 18): bytes, PSNR against the raw frames, and decode
   time for the whole clip and for the 16 frames D^t samples (an H.264 segment decodes up to the
   last frame it needs); plus a 256-pixel JPEG decoded at 1/4 scale for a 64-pixel stage.
2. Build: `video_collection`'s worker function (decode, resize, crop, JPEG encode) on the source,
   clips per second at 64 and 256.
3. Loader: a Grain DataLoader with each paper stage's own transforms over 256-pixel JPEG clip
   records (D^t and ↑F at 64, SR^t_l at 256, SR_h's 768 crops from 768-pixel image records), in
   examples per second.
4. Cores per TPU host (4 chips): the examples/s a host consumes (global batch / 64 chips x 4 /
   step seconds, from `bench/plan_table_simulated.py`'s JSON: its step times are at 40% of bf16
   peak) over the loader's examples/s per core.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCE_SIZE, SOURCE_FPS, SOURCE_FRAMES = (360, 640), 30, 304  # 4 clips of 76
CLIP_FRAMES = 76
CHIPS_PER_HOST = {"v5e": 4, "v5p": 4}
HOST_CHIPS_IN_PLAN = 64  # bench/plan_table_simulated.py plans 64-chip meshes


def photographs() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [np.asarray(image, np.uint8) for image in load_sample_images().images]


def camera_pan(num_frames: int) -> np.ndarray:
    """(T, 360, 640, 3): a window sliding and zooming across the photographs, side by side."""
    from PIL import Image

    canvas = np.concatenate(photographs(), axis=1)  # (427, 1280, 3)
    height, width = SOURCE_SIZE
    frames = []
    for t in range(num_frames):
        zoom = 1.0 + 0.15 * np.sin(t / 40)
        h, w = int(height / zoom * 1.1), int(width / zoom * 1.1)
        top = int((canvas.shape[0] - h) * (0.5 + 0.5 * np.sin(t / 50)))
        left = int((canvas.shape[1] - w) * t / num_frames)
        crop = canvas[top : top + h, left : left + w]
        frames.append(np.asarray(Image.fromarray(crop).resize((width, height), Image.BILINEAR)))
    return np.stack(frames)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def best_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def storage(pan: np.ndarray) -> dict:
    from PIL import Image

    from mav_jax.data.clips import decode_frame
    from mav_jax.data.media import decode_segment, encode_jpeg, encode_segment, square_frame

    sampled = list(range(0, CLIP_FRAMES, 5))  # D^t: 16 frames at skip 5
    every = list(range(CLIP_FRAMES))
    results = {}
    for size in (64, 256):
        clip = np.stack([square_frame(f, size) for f in pan[:CLIP_FRAMES]])

        def png(frame):
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="PNG")
            return buffer.getvalue()

        formats = {
            "png": [png(f) for f in clip],
            "jpeg90": [encode_jpeg(f, 90) for f in clip],
        }
        row = {}
        for name, frames in formats.items():
            decoded = np.stack([decode_frame(f) for f in frames])
            row[name] = {
                "kib_per_clip": sum(map(len, frames)) / 1024,
                "psnr_db": psnr(decoded, clip) if name != "png" else float("inf"),
                "ms_decode_76": 1e3 * best_seconds(lambda fr=frames: [decode_frame(f) for f in fr]),
                "ms_decode_16": 1e3
                * best_seconds(lambda fr=frames: [decode_frame(fr[i]) for i in sampled]),
            }
        segment = encode_segment(clip, SOURCE_FPS, crf=18)
        decoded = np.stack(decode_segment(segment, every))
        row["h264_crf18"] = {
            "kib_per_clip": len(segment) / 1024,
            "psnr_db": psnr(decoded[:CLIP_FRAMES], clip),
            "ms_decode_76": 1e3 * best_seconds(lambda s=segment: decode_segment(s, every)),
            "ms_decode_16": 1e3 * best_seconds(lambda s=segment: decode_segment(s, sampled)),
        }
        results[size] = row
    big = [encode_jpeg(square_frame(f, 256), 90) for f in pan[:CLIP_FRAMES]]
    results["jpeg90_256_read_at_64"] = {
        "ms_decode_16_full": 1e3 * best_seconds(lambda: [decode_frame(big[i]) for i in sampled]),
        "ms_decode_16_draft": 1e3
        * best_seconds(lambda: [decode_frame(big[i], 64) for i in sampled]),
    }
    return results


def build_rate(source: bytes) -> dict:
    from mav_jax.data.sources import SourceItem
    from mav_jax.data.video_collection import VideoCollectionConfig, video_records

    item = SourceItem(record_prefix="0", key="pan", path="pan.mp4", caption="a pan", data=source)
    rates = {}
    for size in (64, 256):
        cfg = VideoCollectionConfig(name="bench", source="-", frame_size=size)
        start = time.perf_counter()
        clips = sum(1 for _ in video_records(item, cfg))
        rates[size] = clips / (time.perf_counter() - start)
    return rates


def stage_configs() -> dict:
    from mav_jax.configs import interpolation, keyframes, sr_high, sr_low

    video = keyframes.get_config("paper")
    video.phase = "video"
    return {
        "keyframes": video,
        "interpolation": interpolation.get_config("paper"),
        "sr_low": sr_low.get_config("paper"),
        "sr_high": sr_high.get_config("paper"),
    }


def loader_rates(pan: np.ndarray, seconds: float) -> dict:
    import grain.python as grain

    from mav_jax.data.loader import make_loader
    from mav_jax.data.media import encode_jpeg, square_frame
    from mav_jax.stages import stage_from_config

    clip_256 = [encode_jpeg(square_frame(f, 256), 90) for f in pan[:CLIP_FRAMES]]
    image_768 = [encode_jpeg(square_frame(pan[0], 768), 90)]
    rates = {}
    for name, config in stage_configs().items():
        stage = stage_from_config(config)
        frames = image_768 if stage.split == "image_text" else clip_256
        record = {"video": frames, "fps": np.float32(SOURCE_FPS), "caption": b"a pan"}
        source = [record] * 4096
        loader = make_loader(
            source,
            stage.operations(),
            batch_size=4,
            seed=0,
            shard_options=grain.NoSharding(),
            read_threads=1,
            prefetch_buffer_size=4,
        )
        iterator = iter(loader)
        next(iterator)  # warm up
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            count += next(iterator)["video"].shape[0]
        rates[name] = count / (time.perf_counter() - start)
    return rates


def cores_table(plans: dict, loader: dict) -> list[dict]:
    from mav_jax.plan import CHIP_PEAK_TFLOPS

    rows = []
    for stage, rate_per_core in loader.items():
        plan = plans.get(stage)
        if plan is None:
            continue
        per_chip = plan["config_per_device_batch"]
        flops = plan["gflops_per_device_per_example"] * 1e9 * per_chip
        for chip, chips in CHIPS_PER_HOST.items():
            step = flops / (CHIP_PEAK_TFLOPS[chip] * 1e12 * 0.4)
            need = chips * per_chip / step
            rows.append(
                {
                    "stage": stage,
                    "chip": chip,
                    "per_chip_batch": per_chip,
                    "step_s": step,
                    "examples_per_s_per_host": need,
                    "loader_examples_per_s_per_core": rate_per_core,
                    "cores_per_host": need / rate_per_core,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plan_json", default=str(ROOT / "bench/results/plan_table_simulated.json")
    )
    parser.add_argument("--json", default=str(ROOT / "bench/results/ingest.json"))
    parser.add_argument("--loader_seconds", type=float, default=10.0)
    args = parser.parse_args()
    from mav_jax.data.media import encode_segment

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    pan = camera_pan(SOURCE_FRAMES)
    source = encode_segment(pan, SOURCE_FPS, crf=23)
    results = {
        "source": {"size": SOURCE_SIZE, "frames": SOURCE_FRAMES, "kib": len(source) / 1024},
        "storage": storage(pan),
        "build_clips_per_s_per_core": build_rate(source),
        "loader_examples_per_s_per_core": loader_rates(pan, args.loader_seconds),
    }
    plans = (
        json.loads(pathlib.Path(args.plan_json).read_text())
        if os.path.exists(args.plan_json)
        else {}
    )
    results["cores_per_tpu_host"] = cores_table(plans, results["loader_examples_per_s_per_core"])
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
