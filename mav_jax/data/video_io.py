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


def tile_videos(videos: np.ndarray) -> np.ndarray:
    """(N, F, H, W, 3) -> (F, H, N * W, 3): clips side by side, one frame sequence."""
    n, f, h, w, c = videos.shape
    return videos.transpose(1, 2, 0, 3, 4).reshape(f, h, n * w, c)


def write_gif(path: str, frames: np.ndarray, fps: float) -> None:
    """(F, H, W, 3) uint8 -> an endlessly looping GIF (local or gs://)."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    with open_file(path, "wb") as f:
        images[0].save(
            f,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            loop=0,
            duration=max(int(round(1000 / fps)), 20),
        )


def write_mp4(path: str, frames: np.ndarray, fps: float) -> None:
    """(F, H, W, 3) uint8 -> H.264 MP4 (yuv420p, so odd sizes are padded to even by edge copy)."""
    import fractions

    import av

    _, height, width, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    with open_file(path, "wb") as f, av.open(f, mode="w", format="mp4") as container:
        stream = container.add_stream(
            "libx264", rate=fractions.Fraction(fps).limit_denominator(1000)
        )
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def load_frames(path: str, size: int) -> np.ndarray:
    """An image or video file -> (F, size, size, 3) float32 in [-1, 1] (centre crop, resize)."""
    from PIL import Image

    if path.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".webp")):
        frames = np.asarray(Image.open(path).convert("RGB"))[None]
    else:
        frames, _ = read_video(path)
    out = []
    for frame in frames:
        h, w = frame.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = Image.fromarray(frame[top : top + side, left : left + side])
        out.append(np.asarray(image.resize((size, size), Image.BILINEAR), np.float32))
    return np.stack(out) / 127.5 - 1.0


def contact_sheet(videos: np.ndarray, max_columns: int = 16) -> np.ndarray:
    """(N, F, H, W, 3) uint8 -> one image: a row per video, up to `max_columns` evenly spaced frames."""
    n, f, h, w, c = videos.shape
    columns = np.linspace(0, f - 1, min(f, max_columns)).round().astype(int)
    picked = videos[:, columns]  # (N, C, H, W, 3)
    return picked.transpose(0, 2, 1, 3, 4).reshape(n * h, len(columns) * w, c)


def write_outputs(prefix: str, video: np.ndarray, fps: float) -> list[str]:
    """(F, H, W, 3) uint8 -> PREFIX.mp4, PREFIX.gif, PREFIX.png."""
    from PIL import Image

    write_mp4(prefix + ".mp4", video, fps)
    write_gif(prefix + ".gif", video, fps)
    Image.fromarray(contact_sheet(video[None])).save(prefix + ".png")
    return [prefix + ext for ext in (".mp4", ".gif", ".png")]
