"""`video_collection`: the user's videos as training clips, one clip per record.

Sources: a folder (captions from sidecar NAME.txt), a WebVid-style manifest, or WebDataset tar
shards as video2dataset writes them (`KEY.mp4` + `KEY.txt` + `KEY.json`). Each video is decoded
with FFmpeg (PyAV) as a stream, each frame resized (shorter side to `frame_size`) and centre
cropped, and cut into clips of `clip_frames` frames (`clip_cutting`), stored as a JPEG per frame
(or one H.264 segment: --frame_format=h264) with the clip's start, the source fps, caption and key.
JPEGs decode only the frames a stage samples, at reduced scale for smaller stages, and are
byte-for-byte reproducible; segments are 10x smaller at the same PSNR (bench/README.md). Split `video`, the split the video stages read.
Build with `python -m mav_jax.data.build video_collection ...`; bad inputs are skipped and counted
(`skips`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from mav_jax.data.clip_cutting import cut_clips
from mav_jax.data.collection import CollectionBuilder, CollectionConfig
from mav_jax.data.media import VideoFrames, encode_jpeg, encode_segment
from mav_jax.data.skips import Skipped
from mav_jax.data.sources import VIDEO_EXTENSIONS, SourceItem, item_bytes

FRAME_FORMATS = ("h264", "jpeg")


def encode_clip(frames: np.ndarray, fps: float, cfg: VideoCollectionConfig):
    """A clip's frames as stored: one H.264 segment (bytes) or a list of JPEGs."""
    if cfg.frame_format == "h264":
        return encode_segment(frames, fps, cfg.crf)
    return [encode_jpeg(frame, cfg.jpeg_quality) for frame in frames]


@dataclasses.dataclass
class VideoCollectionConfig(CollectionConfig):
    clip_frames: int = 76  # frames per record: the longest span a stage samples (16 x skip 5)
    clip_stride: int = 0  # frames between clip starts (0: clip_frames, back to back)
    max_clips_per_video: int = 0  # 0: every clip a video holds
    frame_format: str = "jpeg"  # "jpeg": a JPEG per frame; "h264": one H.264 segment per clip
    crf: int = 18  # the segments' H.264 quality (lower: better, larger)

    def problems(self) -> list[str]:
        found = super().problems()
        if self.clip_frames < 1:
            found.append(f"--clip_frames must be >= 1, got {self.clip_frames}")
        if self.clip_stride < 0 or self.max_clips_per_video < 0:
            found.append("--clip_stride and --max_clips_per_video must be >= 0")
        if self.frame_format not in FRAME_FORMATS:
            found.append(
                f"--frame_format must be one of {FRAME_FORMATS}, got {self.frame_format!r}"
            )
        if not 0 <= self.crf <= 51:
            found.append(f"--crf must be in [0, 51], got {self.crf}")
        return found


def video_records(
    item: SourceItem, cfg: VideoCollectionConfig
) -> Iterator[tuple[str, dict] | Skipped]:
    """One video -> its clips' records (and a `truncated` note if decoding broke part-way)."""
    video = VideoFrames(item_bytes(item, cfg.max_bytes), item.path, cfg.frame_size)
    clips = cut_clips(
        video, video.fps, cfg.clip_frames, cfg.clip_stride or None, cfg.max_clips_per_video or None
    )
    count = 0
    for clip in clips:
        count += 1
        yield (
            f"{item.record_prefix}/{clip.start_frame:07d}",
            {
                "video": encode_clip(clip.frames, video.fps, cfg),
                "num_frames": np.int32(len(clip.frames)),
                "fps": np.float32(video.fps),
                "start_frame": np.int32(clip.start_frame),
                "start_time": np.float32(clip.start_time),
                "caption": item.caption,
                "key": item.key,
                "url": item.url,
                "path": item.path,
                "metadata": item.metadata,
            },
        )
    if count == 0:
        broke = f"; decoding broke {video.truncated}" if video.truncated else ""
        raise Skipped("too short", item.path, f"fewer than --clip_frames={cfg.clip_frames}{broke}")
    if video.truncated:
        yield Skipped("truncated", item.path, f"{video.truncated}; {count} clip(s) kept")


class VideoCollection(CollectionBuilder):
    """The user's videos, cut into captioned training clips."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Whole videos, one per record.",
        "2.0.0": "Clips of clip_frames frames (H.264 or JPEG); tar shards; built by Apache Beam.",
    }
    BUILDER_CONFIGS = [VideoCollectionConfig(name="default")]
    SPLIT = "video"
    EXTENSIONS = VIDEO_EXTENSIONS
    make_records = staticmethod(video_records)

    def _features(self) -> dict:
        size = self.builder_config.frame_size
        if self.builder_config.frame_format == "h264":
            video = tfds.features.Tensor(shape=(), dtype=np.object_)  # an MP4's bytes
        else:
            video = tfds.features.Video((None, size, size, 3), encoding_format="jpeg")
        return {
            "video": video,
            "num_frames": np.int32,
            "fps": np.float32,  # the source's frames per second
            "start_frame": np.int32,  # the clip's first frame in the source
            "start_time": np.float32,  # seconds from the source's start
        }
