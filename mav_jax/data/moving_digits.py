"""`moving_digits`: the embedded default dataset, a TFDS builder that needs no download.

Real handwriting (scikit-learn's bundled digit scans), coloured and moving on a dark background.
Its splits mirror the paper's data:

* `image_text`: single frames with captions naming digit, colour and position (CLIP, the prior, the
  text-to-image phase). Stored as one-frame videos: images are one-frame videos everywhere.
* `video`: unlabeled clips (empty captions) for the temporal phase.
* `eval`: captioned clips naming digit, colour and motion, for sampling and FVD.

Every example is rendered from its own seed, so a build is identical on every machine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from mav_jax.data.digits_render import COLORS, caption, render_clip

SOURCE_FPS = 24.0  # the nominal frame rate of a rendered clip
SPLIT_SEEDS = {"image_text": 1_000_000, "video": 2_000_000, "eval": 3_000_000}


@dataclasses.dataclass
class MovingDigitsConfig(tfds.core.BuilderConfig):
    frame_size: int = 32
    num_frames: int = 80  # >= 76: 16 keyframes at frame skip 5 and the frames between them
    num_images: int = 16384
    num_videos: int = 256
    num_eval: int = 32


class MovingDigits(tfds.core.GeneratorBasedBuilder):
    """Coloured handwritten digits moving and bouncing on a dark background."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "First release.", "1.1.0": "tiny: 16384 images (was 1024)."}
    BUILDER_CONFIGS = [
        MovingDigitsConfig(name="tiny", description="32x32, for tests and the CPU quickstart."),
        MovingDigitsConfig(
            name="small",
            description="64x64, the paper's keyframe resolution.",
            frame_size=64,
            num_images=8192,
            num_videos=2048,
            num_eval=256,
        ),
        MovingDigitsConfig(
            name="tiny64",
            description="64x64 images (few videos): the quickstart's 32 -> 64 super-resolution.",
            frame_size=64,
            num_images=1024,
            num_videos=16,
            num_eval=8,
        ),
    ]
    DEFAULT_CONFIG_NAME = "tiny"

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.frame_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video((None, size, size, 3)),  # (T, H, W, 3) uint8
                    "caption": tfds.features.Text(),
                    "digit": tfds.features.ClassLabel(num_classes=10),
                    "color": tfds.features.ClassLabel(names=list(COLORS)),
                    "fps": np.float32,
                }
            ),
            supervised_keys=None,
            description=__doc__,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        cfg = self.builder_config
        return {
            "image_text": self._generate_examples(
                "image_text", cfg.num_images, frames=1, captioned=True
            ),
            "video": self._generate_examples(
                "video", cfg.num_videos, cfg.num_frames, captioned=False
            ),
            "eval": self._generate_examples("eval", cfg.num_eval, cfg.num_frames, captioned=True),
        }

    def _generate_examples(self, split: str, count: int, frames: int, captioned: bool):
        size = self.builder_config.frame_size
        for i in range(count):
            seed = SPLIT_SEEDS[split] + i
            clip = render_clip(seed, frames, size)
            text = ""
            if captioned:
                text = caption(
                    clip, np.random.default_rng(seed + 7), video=frames > 1, frame_size=size
                )
            yield (
                f"{split}_{i:07d}",
                {
                    "video": clip.frames,
                    "caption": text,
                    "digit": clip.digit,
                    "color": clip.color,
                    "fps": np.float32(SOURCE_FPS),
                },
            )
