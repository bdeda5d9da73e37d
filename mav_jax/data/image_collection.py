"""`image_collection`: the user's captioned images (the text-to-image phase), as one-frame videos.

Sources: a folder (captions from sidecar NAME.txt), a manifest (CSV/TSV/JSONL: image path +
caption), or WebDataset tar shards as img2dataset writes them (`KEY.jpg` + `KEY.txt` +
`KEY.json`). Images are resized (shorter side) and centre-cropped, stored as one-frame JPEG videos
like every image in mav_jax. Split `image_text`, the split the image phases read. Bad inputs are
skipped and counted (`skips`).
"""

from __future__ import annotations

from collections.abc import Iterator

import tensorflow_datasets as tfds

from mav_jax.data.collection import CollectionBuilder, CollectionConfig
from mav_jax.data.media import decode_image, encode_jpeg
from mav_jax.data.sources import IMAGE_EXTENSIONS, SourceItem, item_bytes

ImageCollectionConfig = CollectionConfig


def image_records(item: SourceItem, cfg: CollectionConfig) -> Iterator[tuple[str, dict]]:
    """One image -> its record."""
    frame = decode_image(item_bytes(item, cfg.max_bytes), item.path, cfg.frame_size)
    yield (
        item.record_prefix,
        {
            "video": [encode_jpeg(frame, cfg.jpeg_quality)],
            "caption": item.caption,
            "key": item.key,
            "url": item.url,
            "path": item.path,
            "metadata": item.metadata,
        },
    )


class ImageCollection(CollectionBuilder):
    """The user's images with captions, as one-frame videos."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "PNG frames from a folder or manifest.",
        "2.0.0": "JPEG frames; tar shards; built by Apache Beam.",
    }
    BUILDER_CONFIGS = [CollectionConfig(name="default")]
    SPLIT = "image_text"
    EXTENSIONS = IMAGE_EXTENSIONS
    make_records = staticmethod(image_records)

    def _features(self) -> dict:
        size = self.builder_config.frame_size
        return {"video": tfds.features.Video((1, size, size, 3), encoding_format="jpeg")}
