"""Decode one input (video or image bytes) into square frames for a collection build, or say why
it cannot be used (`skips.Skipped`), and encode frames for storage.

Frames are resized (shorter side to `size`, PIL bilinear) and centre-cropped square one at a time
while the video decodes, so memory holds one clip, not the whole video.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image

from mav_jax.data.augment import resize_shorter_side
from mav_jax.data.skips import Skipped


def square_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3): shorter side to `size` (bilinear), centre crop."""
    resized = resize_shorter_side(frame[None], size)[0]
    height, width, _ = resized.shape
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """(H, W, 3) uint8 -> JPEG bytes (4:2:0, as the web video it came from)."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_segment(frames: np.ndarray, fps: float, crf: int) -> bytes:
    """(T, H, W, 3) uint8 -> an H.264 MP4 (libx264 at `crf`, yuv420p; even sizes)."""
    import fractions

    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        rate = fractions.Fraction(fps).limit_denominator(1001)
        # One x264 thread: a build worker is one core. (Even so, identical frames encoded twice
        # in one process can give different bytes: segment builds are not byte-reproducible.)
        options = {"crf": str(crf), "threads": "1"}
        stream = container.add_stream("libx264", rate=rate, options=options)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def decode_segment(data: bytes, indices: list[int]) -> list[np.ndarray]:
    """The frames at `indices` (sorted) of an encoded segment, decoding only up to the last."""
    import av

    wanted, out = set(indices), {}
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                out[index] = frame.to_ndarray(format="rgb24")
            if index >= indices[-1]:
                break
    if len(out) != len(wanted):
        raise ValueError(f"A clip segment has {len(out)} of the frames {indices}: rebuild it.")
    return [out[i] for i in indices]


def check_size(size: int, path: str, max_bytes: int) -> None:
    if size == 0:
        raise Skipped("empty file", path)
    if max_bytes and size > max_bytes:
        raise Skipped("oversized", path, f"{size} bytes > --max_bytes={max_bytes}")


class VideoFrames:
    """The frames of an encoded video, decoded lazily: open it (raising `Skipped` if it cannot be
    used), read `fps`, iterate square frames. If decoding fails after some frames, iteration stops
    and `truncated` holds the error: the frames before the damage are kept."""

    def __init__(self, data: bytes, path: str, size: int):
        import av  # PyAV: FFmpeg bindings

        self.path, self.size, self.truncated = path, size, ""
        try:
            self._container = av.open(io.BytesIO(data))
        except av.error.FFmpegError as error:
            raise Skipped("unreadable", path, str(error)) from error
        streams = self._container.streams.video
        if not streams:
            self._container.close()
            raise Skipped("no video stream", path)
        self._stream = streams[0]
        if self._stream.codec_context is None:
            self._container.close()
            raise Skipped("unsupported codec", path, "FFmpeg has no decoder for its video stream")
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        if self.fps <= 0:
            self._container.close()
            raise Skipped("unreadable", path, "no frame rate")

    def __iter__(self) -> Iterator[np.ndarray]:
        import av

        count = 0
        try:
            for frame in self._container.decode(self._stream):
                count += 1
                yield square_frame(frame.to_ndarray(format="rgb24"), self.size)
        except av.error.DecoderNotFoundError as error:
            raise Skipped("unsupported codec", self.path, str(error)) from error
        except av.error.FFmpegError as error:
            if count == 0:
                raise Skipped("unreadable", self.path, str(error)) from error
            self.truncated = f"after {count} frames: {error}"
        finally:
            self._container.close()
        if count == 0:
            raise Skipped("unreadable", self.path, "no frames")


def decode_image(data: bytes, path: str, size: int) -> np.ndarray:
    """Image bytes -> (size, size, 3) uint8, or `Skipped`."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as error:
        raise Skipped("oversized", path, str(error)) from error
    except OSError as error:  # UnidentifiedImageError, truncated files
        raise Skipped("unreadable", path, str(error)) from error
    return square_frame(pixels, size)
