"""Read videos as uint8 `(T, H, W, 3)` arrays: encoded files via PyAV (FFmpeg), or .npy/.npz.

Paths go through `tf.io.gfile` when they are not local, so `gs://` manifests and folders work.
"""

from __future__ import annotations

import os

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".gif", ".m4v")


def _open(path: str):
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.GFile(path, "rb")
    return open(path, "rb")


def file_size(path: str) -> int:
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.stat(path).length
    return os.path.getsize(path)


def read_video(path: str, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode the first video stream of `path` -> ((T, H, W, 3) uint8 RGB, frames per second)."""
    import av  # PyAV: FFmpeg bindings from the registry wheel

    frames = []
    try:
        with _open(path) as f, av.open(f) as container:
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
    if "://" in folder:
        import tensorflow as tf

        if not tf.io.gfile.isdir(folder):
            raise FileNotFoundError(f"Video folder not found: {folder}")
        names = tf.io.gfile.listdir(folder)
    else:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"Video folder not found: {folder}")
        names = os.listdir(folder)
    names = sorted(n for n in names if n.lower().endswith(VIDEO_EXTENSIONS))
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
