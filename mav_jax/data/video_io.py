"""Read videos as uint8 `(T, H, W, 3)` arrays: encoded files via PyAV (FFmpeg), or .npy/.npz.

Paths may be local or remote (gs://), through `mav_jax.data.files`.
"""

from __future__ import annotations

import numpy as np

from mav_jax.data.files import list_files, open_file

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".gif", ".m4v")


def read_video(path: str, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode the first video stream of `path` -> ((T, H, W, 3) uint8 RGB, frames per second)."""
    import av  # PyAV: FFmpeg bindings from the registry wheel

    frames = []
    try:
        with open_file(path) as f, av.open(f) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError, OSError, ValueError) as error:
        raise ValueError(f"Cannot decode video {path}: {error}") from error
    if not frames:
        raise ValueError(f"Video {path} has no frames.")
    return np.stack(frames), fps


def decode_video(path: str, max_frames: int | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of `path`."""
    return read_video(path, max_frames)[0]


def list_videos(folder: str) -> list[str]:
    """Video files directly in `folder` (local or gs://), sorted by name."""
    return list_files(folder, VIDEO_EXTENSIONS, what="Video folder")


def load_array_videos(path: str) -> np.ndarray:
    """A .npy file, or the single array of a .npz file, holding (N, T, H, W, 3) uint8 videos."""
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.keys())
        if len(keys) != 1:
            raise ValueError(f"{path} must hold exactly one array of videos, found {keys}.")
        data = data[keys[0]]
    if data.ndim != 5 or data.shape[-1] != 3 or data.dtype != np.uint8:
        raise ValueError(
            f"{path} must hold uint8 videos (N, T, H, W, 3), got {data.dtype} {data.shape}."
        )
    return data
