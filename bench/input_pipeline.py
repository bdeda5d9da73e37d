"""Input pipeline throughput against the training step's consumption, at the tiny keyframe config.

    python bench/input_pipeline.py [--data_dir=DIR] [--batch=4] [--frames=16] [--workers=0]

Builds Moving Digits (tiny) into DIR (a temporary folder by default), then measures clips/s that
the Grain loader delivers (clip sampling at frame skips 1-5, crop, flip, scaling) and clips/s that
one training step of the tiny U-Net (forward, backward, AdamW) consumes at the same batch shape.
A ratio above 1 means the pipeline keeps up. The loader reads records as training does, their
frames left encoded and only a clip's decoded (`loader.video_source`); for comparison, also with
TFDS decoding every frame of a record (80 for Moving Digits) first.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import tempfile
import time

import jax
import jax.numpy as jnp
import optax
import tensorflow_datasets as tfds
from flax import nnx

from mav_jax.data.augment import CropFlipScale
from mav_jax.data.builders import build
from mav_jax.data.clips import ClipSampling, SampleClip
from mav_jax.data.loader import make_loader, video_source
from mav_jax.nn import SpatioTemporalUNet, UNetConfig


def tiny_unet_config() -> UNetConfig:
    path = pathlib.Path(__file__).resolve().parents[1] / "configs" / "common.py"
    spec = importlib.util.spec_from_file_location("common", path)
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return UNetConfig.from_dict(common.unet_config("tiny")).replace(embedding_dim=0)


def pipeline_rate(
    data_dir: str, batch: int, frames: int, workers: int, batches: int, decode_all: bool = False
) -> float:
    if decode_all:
        source = tfds.data_source("moving_digits/tiny", split="video", data_dir=data_dir)
    else:
        source = video_source("moving_digits/tiny", "video", data_dir)
    operations = [
        SampleClip(ClipSampling(num_frames=frames, frame_skips=(1, 2, 3, 4, 5))),
        CropFlipScale(32),
    ]
    iterator = iter(make_loader(source, operations, batch_size=batch, seed=0, worker_count=workers))
    next(iterator)  # start-up
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def training_rate(batch: int, frames: int, steps: int) -> float:
    cfg = tiny_unet_config()
    graphdef, params = nnx.split(SpatioTemporalUNet(cfg, rngs=nnx.Rngs(0)), nnx.Param)
    optimizer = optax.adamw(1e-4)
    opt_state = optimizer.init(params)

    def loss(params, x, t, fps):
        return jnp.mean(nnx.merge(graphdef, params)(x, t, fps=fps) ** 2)

    @jax.jit
    def step(params, opt_state, x, t, fps):
        grads = jax.grad(loss)(params, x, t, fps)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    x = jnp.zeros((batch, frames, 32, 32, 3))
    t, fps = jnp.ones((batch,)), jnp.full((batch,), 8.0)
    params, opt_state = step(params, opt_state, x, t, fps)  # compile
    jax.block_until_ready(params)
    start = time.perf_counter()
    for _ in range(steps):
        params, opt_state = step(params, opt_state, x, t, fps)
    jax.block_until_ready(params)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", help="TFDS data dir (Moving Digits tiny is built if absent)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="Grain worker processes")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="moving_digits_")
    build("moving_digits", data_dir, "tiny")
    delivered = pipeline_rate(data_dir, args.batch, args.frames, args.workers, args.batches)
    decode_all = pipeline_rate(
        data_dir, args.batch, args.frames, args.workers, args.batches, decode_all=True
    )
    consumed = training_rate(args.batch, args.frames, args.steps)
    print(
        f"pipeline: {delivered:.1f} clips/s delivered ({args.frames} frames, 32x32, "
        f"batch {args.batch}, {args.workers} workers)"
    )
    print(f"pipeline, TFDS decoding all of a record's frames: {decode_all:.1f} clips/s")
    print(f"training: {consumed:.1f} clips/s consumed by the tiny U-Net step")
    print(f"pipeline / training: {delivered / consumed:.1f}x")


if __name__ == "__main__":
    main()
