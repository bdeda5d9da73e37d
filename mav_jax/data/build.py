"""Build a mav_jax dataset with TFDS (offline for the embedded one).

    python -m mav_jax.data.build moving_digits --data_dir=DIR [--config=tiny|small]

Prints TFDS's progress bars, then the split sizes. Datasets are written as array_record files,
which the input pipelines read with random access.
"""

from __future__ import annotations

import sys

from absl import app, flags

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where TFDS writes the dataset (local or gs://).")
_CONFIG = flags.DEFINE_string("config", None, "Builder config (moving_digits: tiny or small).")

BUILDERS = ("moving_digits",)


def build(name: str, data_dir: str, config: str | None = None):
    """Download-free build of a registered builder; returns the builder."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown dataset '{name}'; choose one of {BUILDERS}.")
    from mav_jax.data.moving_digits import MovingDigits

    builder = MovingDigits(config=config, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare()
    return builder


def main(argv) -> None:
    if len(argv) != 2 or not _DATA_DIR.value:
        sys.exit(f"usage: python -m mav_jax.data.build {{{','.join(BUILDERS)}}} --data_dir=DIR")
    try:
        builder = build(argv[1], _DATA_DIR.value, _CONFIG.value)
    except ValueError as error:
        sys.exit(f"error: {error}")
    for split, info in builder.info.splits.items():
        print(f"{builder.info.full_name} {split}: {info.num_examples} examples")


if __name__ == "__main__":
    app.run(main)
