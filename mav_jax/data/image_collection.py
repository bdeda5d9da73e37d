"""`image_collection`: a TFDS builder over the user's captioned images (text-to-image phase).

From a manifest (CSV/TSV/JSONL: image path + caption) or a folder (each image's caption from a
sidecar `NAME.txt`, else empty). Images are resized (shorter side) and centre-cropped, and stored as
one-frame videos, like every image in mav_jax. Unreadable or empty files are skipped and reported.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, UnidentifiedImageError

from mav_jax.data.files import exists, list_files, open_file, skip_report
from mav_jax.data.manifest import read_manifest
from mav_jax.data.video_collection import resize_and_crop

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclasses.dataclass
class ImageCollectionConfig(tfds.core.BuilderConfig):
    source: str = ""  # a manifest (.csv/.tsv/.jsonl) or a folder of images; local or gs://
    frame_size: int = 64


def folder_entries(folder: str) -> list[tuple[str, str]]:
    """(image, caption) pairs of a folder; a caption comes from the sidecar NAME.txt, if any."""
    entries = []
    for path in list_files(folder, IMAGE_EXTENSIONS, what="Image folder"):
        sidecar = os.path.splitext(path)[0] + ".txt"
        caption = ""
        if exists(sidecar):
            with open_file(sidecar, "r") as f:
                caption = f.read().strip()
        entries.append((path, caption))
    return entries


class ImageCollection(tfds.core.GeneratorBasedBuilder):
    """The user's images with captions, as one-frame videos."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [ImageCollectionConfig(name="default")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: dict[str, list[str]] = collections.defaultdict(list)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.frame_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video((1, size, size, 3)),
                    "caption": tfds.features.Text(),
                    "path": tfds.features.Text(),
                }
            ),
            description=__doc__,
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        source = self.builder_config.source
        if source.endswith((".csv", ".tsv", ".jsonl")):
            entries = read_manifest(source)
        else:
            entries = folder_entries(source)
        return {"train": self._generate_examples(entries)}

    def _generate_examples(self, entries):
        size = self.builder_config.frame_size
        for index, (path, caption) in enumerate(entries):
            try:
                with open_file(path) as f:
                    data = f.read()
                if not data:
                    self.skipped["empty"].append(f"{path}: zero bytes")
                    continue
                image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            except (OSError, UnidentifiedImageError) as error:
                self.skipped["unreadable"].append(f"{path}: {error}")
                continue
            yield (
                f"{index:09d}",
                {
                    "video": resize_and_crop(image[None], size),
                    "caption": caption,
                    "path": path,
                },
            )
        print(skip_report("image_collection", self.skipped))
