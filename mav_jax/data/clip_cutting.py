"""Cut a video's frame stream into training clips: one record is one example.

A clip is `clip_frames` consecutive source frames (the longest span a stage samples: its frames x
its largest frame skip, e.g. 16 x 5 - 4 = 76 for D^t), so the loader can still draw any frame skip
from it. Clips are taken every `stride` frames (default: back to back), never past the video's end;
a video shorter than one clip gives none. Frames are consumed as a stream, so a long video is never
held in memory whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np


@dataclasses.dataclass(frozen=True)
class Clip:
    start_frame: int  # index of its first frame in the source video
    start_time: float  # seconds: start_frame / the source's average fps
    frames: np.ndarray  # (clip_frames, H, W, 3) uint8


def cut_clips(
    frames: Iterable[np.ndarray],
    fps: float,
    clip_frames: int,
    stride: int | None = None,
    max_clips: int | None = None,
) -> Iterator[Clip]:
    """Clips of `clip_frames` frames starting at 0, stride, 2 * stride, ... (at most `max_clips`)."""
    stride = stride or clip_frames
    if clip_frames < 1 or stride < 1:
        raise ValueError(f"clip_frames and stride must be >= 1, got {clip_frames}, {stride}.")
    if fps <= 0:
        raise ValueError(f"A video's fps must be positive to time its clips, got {fps}.")
    window: list[np.ndarray] = []  # frames from the next clip's start on
    next_start, emitted = 0, 0
    for index, frame in enumerate(frames):
        if index >= next_start:
            window.append(frame)
        if len(window) == clip_frames:
            yield Clip(next_start, next_start / fps, np.stack(window))
            emitted += 1
            if max_clips is not None and emitted >= max_clips:
                return
            next_start += stride
            keep = clip_frames - stride  # overlapping clips share frames
            window = window[stride:] if keep > 0 else []
