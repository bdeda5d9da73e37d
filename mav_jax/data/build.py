"""Build a mav_jax dataset with TFDS.

    python -m mav_jax.data.build moving_digits --data_dir=DIR [--config=tiny|small|tiny64]
    python -m mav_jax.data.build video_collection --data_dir=DIR --source=MANIFEST_OR_FOLDER \\
        --name=my_videos [--frame_size=64] [--min_frames=16]
    python -m mav_jax.data.build image_collection --data_dir=DIR --source=MANIFEST_OR_FOLDER \
        --name=my_images [--frame_size=64]

Prints TFDS's progress bars, then the split sizes (and, for user collections, the skipped-file
report). Datasets are written as array_record files, which the input pipelines read with random
access.
"""

from __future__ import annotations

import sys

from absl import app, flags

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where TFDS writes the dataset (local or gs://).")
_CONFIG = flags.DEFINE_string("config", None, "moving_digits builder config: tiny, small or tiny64.")
_SOURCE = flags.DEFINE_string("source", None, "video_collection: a .csv/.tsv/.jsonl or a folder.")
_NAME = flags.DEFINE_string("name", "default", "video_collection: the config name to build as.")
_FRAME_SIZE = flags.DEFINE_integer("frame_size", 64, "video_collection: square frame size.")
_MIN_FRAMES = flags.DEFINE_integer("min_frames", 16, "video_collection: skip shorter videos.")

BUILDERS = ("moving_digits", "video_collection", "image_collection")


def build(name: str, data_dir: str, config: str | None = None, **collection):
    """Build a registered builder; returns it."""
    if name == "moving_digits":
        from mav_jax.data.moving_digits import MovingDigits

        builder = MovingDigits(config=config, data_dir=data_dir, file_format="array_record")
    elif name == "video_collection":
        from mav_jax.data.video_collection import VideoCollection, VideoCollectionConfig

        if not collection.get("source"):
            raise ValueError("video_collection needs --source=MANIFEST_OR_FOLDER.")
        builder = VideoCollection(
            config=VideoCollectionConfig(**collection),
            data_dir=data_dir,
            file_format="array_record",
        )
    elif name == "image_collection":
        from mav_jax.data.image_collection import ImageCollection, ImageCollectionConfig

        if not collection.get("source"):
            raise ValueError("image_collection needs --source=MANIFEST_OR_FOLDER.")
        collection.pop("min_frames", None)
        builder = ImageCollection(
            config=ImageCollectionConfig(**collection),
            data_dir=data_dir,
            file_format="array_record",
        )
    else:
        raise ValueError(f"Unknown dataset '{name}'; choose one of {BUILDERS}.")
    builder.download_and_prepare()
    return builder


def main(argv) -> None:
    if len(argv) != 2 or not _DATA_DIR.value:
        sys.exit(f"usage: python -m mav_jax.data.build {{{','.join(BUILDERS)}}} --data_dir=DIR")
    collection = {}
    if argv[1] in ("video_collection", "image_collection"):
        collection = dict(name=_NAME.value, source=_SOURCE.value, frame_size=_FRAME_SIZE.value,
                          min_frames=_MIN_FRAMES.value)  # fmt: skip
    try:
        builder = build(argv[1], _DATA_DIR.value, _CONFIG.value, **collection)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    for split, info in builder.info.splits.items():
        print(f"{builder.info.full_name} {split}: {info.num_examples} examples")


if __name__ == "__main__":
    app.run(main)
