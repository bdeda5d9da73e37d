"""Read videos as uint8 `(T, H, W, 3)` arrays: encoded files via PyAV (FFmpeg), or .npy/.npz."""

from __future__ import annotations

import os

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".gif", ".m4v")


def decode_video(path: str, max_frames: int | None = None) -> np.ndarray:
    """Decode the first video stream of `path` to (T, H, W, 3) uint8 RGB."""
    import av  # PyAV: FFmpeg bindings from the registry wheel

    frames = []
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError, OSError) as error:
        raise ValueError(f"Cannot decode video {path}: {error}") from error
    if not frames:
        raise ValueError(f"Video {path} has no frames.")
    return np.stack(frames)


def list_videos(folder: str) -> list[str]:
    """Video files directly in `folder`, sorted by name."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Video folder not found: {folder}")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(VIDEO_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


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
