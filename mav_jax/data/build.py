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

from mav_jax.data.builders import BUILDERS, build

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where TFDS writes the dataset (local or gs://).")
_CONFIG = flags.DEFINE_string(
    "config", None, "moving_digits builder config: tiny, small or tiny64."
)
_SOURCE = flags.DEFINE_string("source", None, "video_collection: a .csv/.tsv/.jsonl or a folder.")
_NAME = flags.DEFINE_string("name", "default", "video_collection: the config name to build as.")
_FRAME_SIZE = flags.DEFINE_integer("frame_size", 64, "video_collection: square frame size.")
_MIN_FRAMES = flags.DEFINE_integer("min_frames", 16, "video_collection: skip shorter videos.")


def main(argv) -> None:
    if len(argv) != 2 or not _DATA_DIR.value:
        sys.exit(f"usage: python -m mav_jax.data.build {{{','.join(BUILDERS)}}} --data_dir=DIR")
    collection = {}
    if argv[1] in ("video_collection", "image_collection"):
        collection = dict(
            name=_NAME.value,
            source=_SOURCE.value,
            frame_size=_FRAME_SIZE.value,
            min_frames=_MIN_FRAMES.value,
        )
    try:
        builder = build(argv[1], _DATA_DIR.value, _CONFIG.value, **collection)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    for split, info in builder.info.splits.items():
        print(f"{builder.info.full_name} {split}: {info.num_examples} examples")


def cli() -> None:
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    cli()
