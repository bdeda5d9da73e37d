"""Clip sampling: F frames at a frame skip, and the frame rate that skip implies (fps conditioning).

A clip of F frames at skip k spans (F - 1) * k + 1 source frames and plays at source_fps / k.
The skip is drawn uniformly from the configured candidates, or (the paper's option) through a
Beta-distributed target frame rate; only skips the source video is long enough for are eligible.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence

import grain.python as grain
import numpy as np
from PIL import Image


@dataclasses.dataclass(frozen=True)
class ClipSampling:
    num_frames: int = 16
    frame_skips: tuple[int, ...] = (1, 2, 3, 4, 5)
    fps_distribution: str = "uniform"  # "uniform" over skips, or "beta" over frame rates
    beta: tuple[float, float] = (2.0, 2.0)  # Beta(a, b) over [lowest, highest] reachable fps

    def __post_init__(self):
        if self.num_frames < 1 or not self.frame_skips or min(self.frame_skips) < 1:
            raise ValueError(f"Invalid clip sampling: {self}.")
        if self.fps_distribution not in ("uniform", "beta"):
            raise ValueError(
                f"fps_distribution must be 'uniform' or 'beta', got {self.fps_distribution}."
            )

    def span(self, skip: int) -> int:
        """Source frames covered by one clip at this skip."""
        return (self.num_frames - 1) * skip + 1


def fps_curriculum(sampling: ClipSampling, progress: float, start_skips: int = 1) -> ClipSampling:
    """High-to-low frame-rate curriculum: at training `progress` in [0, 1], allow the smallest
    skips (highest fps) first, then widen to all of them. Starts with `start_skips` candidates and
    reaches the full set at progress 1; the trainer rebuilds its loader at each phase change."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"Curriculum progress must be in [0, 1], got {progress}.")
    skips = sorted(sampling.frame_skips)
    count = start_skips + round(progress * (len(skips) - start_skips))
    return dataclasses.replace(sampling, frame_skips=tuple(skips[: max(1, count)]))


def choose_frame_skip(
    sampling: ClipSampling, num_source_frames: int, rng: np.random.Generator
) -> int:
    feasible = sorted(k for k in sampling.frame_skips if sampling.span(k) <= num_source_frames)
    if not feasible:
        raise ValueError(
            f"A {num_source_frames}-frame video is too short for {sampling.num_frames} frames at "
            f"any skip in {sampling.frame_skips} (needs {sampling.span(min(sampling.frame_skips))})."
        )
    if sampling.fps_distribution == "uniform" or len(feasible) == 1:
        return int(feasible[rng.integers(len(feasible))])
    # Beta over the frame rate, then the feasible skip closest to it (in rate).
    rates = 1.0 / np.asarray(feasible, np.float64)  # relative to the source fps
    target = rates.min() + rng.beta(*sampling.beta) * (rates.max() - rates.min())
    return int(feasible[int(np.argmin(np.abs(rates - target)))])


def decode_frame(frame, size: int | None = None) -> np.ndarray:
    """One frame -> (H, W, 3) uint8: decoded pixels pass through; encoded ones (the PNG or JPEG
    bytes `loader.video_source` leaves a record's frames as) are decoded here. With `size`, a JPEG
    is decoded at the smallest power-of-two reduction (1/2, 1/4, 1/8) still at least `size` on
    its shorter side (libjpeg's DCT scaling): a 256-pixel build feeds a 64-pixel stage at a
    fraction of the cost of a full decode."""
    if isinstance(frame, (bytes, np.bytes_)):
        try:
            with Image.open(io.BytesIO(frame)) as image:
                if size and image.format == "JPEG":
                    image.draft("RGB", (size, size))
                return np.asarray(image.convert("RGB"))
        except OSError as error:  # PIL's UnidentifiedImageError, truncated files
            raise ValueError(
                f"A video frame does not decode ({error}); the dataset's records are "
                "damaged: rebuild it."
            ) from error
    return np.asarray(frame, np.uint8)


def decode_frames(video, indices: list[int], size: int | None = None) -> np.ndarray:
    """The frames at `indices` of a record's video -> (F, H, W, 3) uint8. `video` is decoded
    frames, encoded frames (PNG/JPEG, decoded one by one, see `decode_frame`), or one encoded
    H.264 segment (bytes; decoded once, up to the last frame wanted)."""
    if isinstance(video, (bytes, np.bytes_)):
        from mav_jax.data.media import decode_segment

        try:
            return np.stack(decode_segment(bytes(video), indices))
        except Exception as error:  # PyAV's FFmpegError and friends
            raise ValueError(f"A clip segment does not decode ({error}): rebuild it.") from error
    return np.stack([decode_frame(video[i], size) for i in indices])


def sample_clip(
    video: Sequence | bytes,
    source_fps: float,
    sampling: ClipSampling,
    rng,
    decode_size: int | None = None,
    num_frames: int | None = None,
) -> dict:
    """T frames ((T, H, W, 3) pixels, T encoded frames, or an encoded segment of `num_frames`)
    -> {'video': (F, H, W, 3) uint8, 'fps', 'frame_skip', 'start'}. Only the F chosen frames
    are decoded (see `decode_frame` for `decode_size`)."""
    length = len(video) if num_frames is None else num_frames
    skip = choose_frame_skip(sampling, length, rng)
    start = int(rng.integers(0, length - sampling.span(skip) + 1))
    indices = list(range(start, start + sampling.span(skip), skip))
    return {
        "video": decode_frames(video, indices, decode_size),
        "fps": np.float32(source_fps / skip),
        "frame_skip": np.int32(skip),
        "start": np.int32(start),
    }


class SampleClip(grain.RandomMapTransform):
    """Grain transform: a TFDS example {'video', 'fps', ...} -> a sampled clip (other keys kept).
    `decode_size`: the stage resizes frames to this size next, so JPEGs may decode smaller."""

    def __init__(self, sampling: ClipSampling, decode_size: int | None = None):
        self.sampling, self.decode_size = sampling, decode_size

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        # A record's frames: a list of decoded arrays or encoded images (video_source), or one
        # encoded segment of 'num_frames' frames (video_collection's H.264 records).
        video = element["video"]
        fps = float(element.get("fps", 0.0))  # image records have no frame rate
        length = int(element["num_frames"]) if isinstance(video, (bytes, np.bytes_)) else None
        clip = sample_clip(video, fps, self.sampling, rng, self.decode_size, length)
        rest = {k: v for k, v in element.items() if k not in ("video", "fps", "num_frames")}
        return {**rest, **clip}
