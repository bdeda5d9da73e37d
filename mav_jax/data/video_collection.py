"""`video_collection`: a TFDS builder over the user's own videos (a manifest or a folder).

Each video is decoded with FFmpeg (PyAV), resized so its shorter side is `frame_size` and centre
cropped square, keeping its source fps. Corrupt, unreadable, empty and too-short videos are skipped
and counted; the report (`builder.skipped`) is printed at the end of the build. One bad file never
stops the build or loses the good ones.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from mav_jax.data.files import file_size, skip_report
from mav_jax.data.manifest import read_manifest
from mav_jax.data.video_io import list_videos, read_video


@dataclasses.dataclass
class VideoCollectionConfig(tfds.core.BuilderConfig):
    source: str = ""  # a manifest (.csv/.tsv/.jsonl) or a folder of videos; local or gs://
    frame_size: int = 64
    min_frames: int = 16  # shorter videos are skipped
    max_frames: int = 512  # longer videos are cut


def resize_and_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) -> (T, size, size, 3): shorter side to `size` (bilinear), centre crop."""
    _, height, width, _ = frames.shape
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = np.empty((frames.shape[0], size, size, 3), np.uint8)
    for t, frame in enumerate(frames):
        resized = Image.fromarray(frame).resize((new_w, new_h), Image.BILINEAR)
        out[t] = np.asarray(resized)[top : top + size, left : left + size]
    return out


class VideoCollection(tfds.core.GeneratorBasedBuilder):
    """The user's videos, with captions when the manifest has them."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [VideoCollectionConfig(name="default")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: dict[str, list[str]] = collections.defaultdict(list)  # reason -> paths

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.frame_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video((None, size, size, 3)),
                    "caption": tfds.features.Text(),
                    "fps": np.float32,
                    "path": tfds.features.Text(),
                }
            ),
            description=__doc__,
        )

    def _entries(self) -> list[tuple[str, str]]:
        source = self.builder_config.source
        if not source:
            raise ValueError("VideoCollectionConfig.source must name a manifest or a folder.")
        if source.endswith((".csv", ".tsv", ".jsonl")):
            return read_manifest(source)
        return [(path, "") for path in list_videos(source)]

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples(self._entries())}

    def _generate_examples(self, entries):
        cfg = self.builder_config
        for index, (path, caption) in enumerate(entries):
            try:
                if file_size(path) == 0:
                    self.skipped["empty"].append(f"{path}: zero bytes")
                    continue
                frames, fps = read_video(path, max_frames=cfg.max_frames)
            except (ValueError, OSError) as error:  # missing, corrupt, truncated, no frames
                reason = "empty" if "no frames" in str(error) else "unreadable"
                self.skipped[reason].append(f"{path}: {error}")
                continue
            if frames.shape[0] < cfg.min_frames:
                self.skipped["too short"].append(
                    f"{path}: {frames.shape[0]} frames < min_frames={cfg.min_frames}"
                )
                continue
            yield (
                f"{index:09d}",
                {
                    "video": resize_and_crop(frames, cfg.frame_size),
                    "caption": caption,
                    "fps": np.float32(fps),
                    "path": path,
                },
            )
        print(self.report())

    def report(self) -> str:
        return skip_report("video_collection", self.skipped)
