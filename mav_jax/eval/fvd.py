"""Fréchet Video Distance computed exactly as the reference (Unterthiner et al. 2018) does.

uint8 videos -> every frame resized to 224x224 with TF1-legacy bilinear -> 2x/255 - 1 -> I3D
(Kinetics-400, TF-Hub weights) -> 400 logits averaged over time -> float64 mean and covariance on
the host -> Fréchet distance. Batches are sharded over every device of a 1-D mesh.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from mav_jax.data.video_io import decode_video, list_videos, load_array_videos
from mav_jax.eval.frechet import COVARIANCE_CONVENTIONS, FeatureStats, frechet_distance
from mav_jax.eval.resize import tf1_bilinear_resize
from mav_jax.models.i3d import INPUT_SIZE, MIN_FRAMES, NUM_CLASSES, InceptionI3d
from mav_jax.parallel import make_mesh


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How clips are drawn and statistics computed; recorded next to every FVD number."""

    num_videos: int = 2048
    num_frames: int = 16
    clip_sampling: str = "first"  # "first": frames [0, F); "random": a seeded random start
    covariance: str = "unbiased"
    seed: int = 0

    def __post_init__(self):
        if self.num_frames < MIN_FRAMES:
            raise ValueError(
                f"FVD needs at least {MIN_FRAMES} frames per clip, got {self.num_frames}."
            )
        if self.clip_sampling not in ("first", "random"):
            raise ValueError(
                f"clip_sampling must be 'first' or 'random', got {self.clip_sampling}."
            )
        if self.covariance not in COVARIANCE_CONVENTIONS:
            raise ValueError(f"covariance must be one of {COVARIANCE_CONVENTIONS}.")
        if self.num_videos < 2:
            raise ValueError("FVD needs at least 2 videos per set.")


# StyleGAN-V's protocols (Skorokhodov et al. 2022): 2048 clips, biased covariance.
PRESETS = {
    "fvd2048_16f": Protocol(num_videos=2048, num_frames=16, covariance="biased"),
    "fvd2048_128f": Protocol(num_videos=2048, num_frames=128, covariance="biased"),
}


class I3DFeatures:
    """Jit-compiled uint8 clips (B, T, H, W, 3) -> (B, 400) float32 features, sharded over a mesh."""

    def __init__(self, model: InceptionI3d, devices=None, compiler_options: dict | None = None):
        """`compiler_options`: XLA options for the network's compile (e.g. the tests, which build
        everything else at -O0, give I3D -O2 back: its 224x224 forward is runtime, not compile)."""
        self.mesh = make_mesh({"data": -1}, devices)
        graphdef, state = nnx.split(model)
        self.state = jax.device_put(state, NamedSharding(self.mesh, PartitionSpec()))
        self.batch_sharding = NamedSharding(self.mesh, PartitionSpec("data"))

        def features(state, videos):
            frames = tf1_bilinear_resize(videos, (INPUT_SIZE, INPUT_SIZE))
            return nnx.merge(graphdef, state)(2.0 * frames / 255.0 - 1.0)

        self._features = jax.jit(
            features, out_shardings=self.batch_sharding, compiler_options=compiler_options
        )

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    def __call__(self, videos: np.ndarray) -> np.ndarray:
        videos = np.asarray(videos)
        n = videos.shape[0]
        pad = -n % self.num_devices  # the batch must split evenly over the devices
        if pad:
            videos = np.concatenate([videos, np.repeat(videos[-1:], pad, axis=0)])
        batch = jax.device_put(videos, self.batch_sharding)
        return np.asarray(self._features(self.state, batch))[:n]


def sample_clip(video: np.ndarray, protocol: Protocol, rng: np.random.Generator, name: str):
    """(T, H, W, 3) -> (num_frames, H, W, 3) per the protocol; a clear error if too short."""
    if video.shape[0] < protocol.num_frames:
        raise ValueError(
            f"{name} has {video.shape[0]} frames; the protocol needs {protocol.num_frames}."
        )
    start = 0
    if protocol.clip_sampling == "random":
        start = int(rng.integers(0, video.shape[0] - protocol.num_frames + 1))
    return video[start : start + protocol.num_frames]


def tfds_videos(source: str):
    """`tfds:NAME[/CONFIG]:SPLIT` -> (name, video) pairs of the dataset's 'video' feature, read
    with random access from the prepared array_record files under $TFDS_DATA_DIR."""
    import tensorflow_datasets as tfds

    try:
        _, name, split = source.split(":")
    except ValueError:
        raise ValueError(f"A TFDS source is tfds:NAME[/CONFIG]:SPLIT, got '{source}'.") from None
    data = tfds.data_source(name, split=split, data_dir=os.environ.get("TFDS_DATA_DIR"))
    return ((f"{source}[{i}]", np.asarray(data[i]["video"], np.uint8)) for i in range(len(data)))


def iterate_clips(source: str, protocol: Protocol) -> Iterator[tuple[str, np.ndarray]]:
    """(name, clip) pairs from a folder of videos, a .npy/.npz array of videos or a TFDS split."""
    rng = np.random.default_rng(protocol.seed)
    if source.startswith("tfds:"):
        named = tfds_videos(source)
    elif os.path.isdir(source):
        paths = list_videos(source)
        named = ((p, None) for p in paths)
    elif source.endswith((".npy", ".npz")):
        array = load_array_videos(source)
        named = ((f"{source}[{i}]", array[i]) for i in range(array.shape[0]))
    else:
        raise ValueError(
            f"Unknown FVD source '{source}': give a folder of videos, a .npy/.npz array of uint8 "
            "videos (N, T, H, W, 3), tfds:NAME[/CONFIG]:SPLIT, or cached statistics (.stats.npz)."
        )
    for name, video in named:
        if video is None:
            video = decode_video(name)
        yield name, sample_clip(video, protocol, rng, name)


def compute_stats(
    source: str, protocol: Protocol, features: I3DFeatures, batch_size: int = 8, progress=None
) -> FeatureStats:
    """Feature statistics of the first `protocol.num_videos` clips of `source`."""
    stats = FeatureStats(NUM_CLASSES)
    batch, shape = [], None
    clips = iterate_clips(source, protocol)

    def flush():
        stats.update(features(np.stack(batch)))
        if progress is not None:
            progress.update(len(batch))
        batch.clear()

    for name, clip in clips:
        if shape is None:
            shape = clip.shape
        elif clip.shape != shape:
            raise ValueError(
                f"Mixed resolutions in {source}: {name} is {clip.shape[1:3]}, earlier clips are "
                f"{shape[1:3]}. Resize the source to one resolution first."
            )
        batch.append(clip)
        if stats.count + len(batch) == protocol.num_videos:
            break
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if stats.count < protocol.num_videos:
        raise ValueError(
            f"{source} holds {stats.count} usable videos; the protocol asks for "
            f"{protocol.num_videos}. Pass --num_videos={stats.count} or add videos."
        )
    return stats


def save_stats(path: str, stats: FeatureStats, protocol: Protocol, source: str, weights_sha: str):
    meta = {
        "protocol": dataclasses.asdict(protocol),
        "source": source,
        "weights_sha256": weights_sha,
    }
    np.savez(path, count=stats.count, total=stats.total, outer=stats.outer, meta=json.dumps(meta))


def load_stats(path: str) -> tuple[FeatureStats, dict]:
    with np.load(path, allow_pickle=False) as data:
        stats = FeatureStats(NUM_CLASSES, int(data["count"]), data["total"], data["outer"])
        return stats, json.loads(str(data["meta"]))


def fvd_from_stats(real: FeatureStats, fake: FeatureStats, covariance: str) -> float:
    return frechet_distance(
        real.mean(), real.covariance(covariance), fake.mean(), fake.covariance(covariance)
    )
