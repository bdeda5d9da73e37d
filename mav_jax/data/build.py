"""Build a mav_jax dataset with TFDS.

    python -m mav_jax.data.build moving_digits --data_dir=DIR [--config=tiny|small|tiny64]
    python -m mav_jax.data.build video_collection --data_dir=DIR --name=NAME \\
        --source=FOLDER|MANIFEST|'shards/{00000..00099}.tar' [--frame_size=64] [--clip_frames=76]
    python -m mav_jax.data.build image_collection --data_dir=DIR --name=NAME \\
        --source=FOLDER|MANIFEST|'shards/{00000..00099}.tar' [--frame_size=64]

Collections are built by Apache Beam: in this process by default, on N local processes with
`--beam_runner=DirectRunner --direct_num_workers=N`, on Dataflow with
`--beam_runner=DataflowRunner --beam_pipeline_options=project=P,region=R,temp_location=gs://...`
(see launch/build_data.sh). Prints the split sizes and the report of skipped inputs. Datasets are
array_record files, which the input pipelines read with random access.
"""

from __future__ import annotations

import sys

from absl import app, flags

from mav_jax.data.builders import BUILDERS, COLLECTIONS, build

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where TFDS writes the dataset (local or gs://).")
_CONFIG = flags.DEFINE_string("config", None, "moving_digits: tiny, small or tiny64.")
_SOURCE = flags.DEFINE_string(
    "source", None, "Collections: a folder, a .csv/.tsv/.jsonl manifest, or tar shards."
)
_NAME = flags.DEFINE_string("name", "default", "Collections: the config name to build as.")
_FRAME_SIZE = flags.DEFINE_integer("frame_size", 64, "Collections: stored frames' square size.")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "Collections: stored JPEG quality.")
_MAX_BYTES = flags.DEFINE_integer("max_bytes", 2**31, "Collections: skip larger inputs (0: any).")
_ALLOW_UNCAPTIONED = flags.DEFINE_bool(
    "allow_uncaptioned", False, "Collections: keep tar samples that have no caption."
)
_CLIP_FRAMES = flags.DEFINE_integer("clip_frames", 76, "video_collection: frames per clip.")
_CLIP_STRIDE = flags.DEFINE_integer(
    "clip_stride", 0, "video_collection: frames between clip starts (0: clip_frames)."
)
_MAX_CLIPS = flags.DEFINE_integer("max_clips_per_video", 0, "video_collection: 0 keeps all.")
_FRAME_FORMAT = flags.DEFINE_enum(
    "frame_format", "jpeg", ["jpeg", "h264"], "video_collection: JPEGs or one H.264 segment."
)
_CRF = flags.DEFINE_integer("crf", 18, "video_collection: H.264 quality of the segments.")
_BEAM_RUNNER = flags.DEFINE_string(
    "beam_runner", None, "Collections: Beam runner (default: in this process)."
)
_WORKERS = flags.DEFINE_integer(
    "direct_num_workers", 0, "DirectRunner: local worker processes (multi-processing mode)."
)
_PIPELINE_OPTIONS = flags.DEFINE_list(
    "beam_pipeline_options", [], "More Beam pipeline options, as key=value,key=value."
)


def pipeline_options() -> list[str]:
    """Beam's pipeline options from the flags."""
    options = [f"--runner={_BEAM_RUNNER.value}"] if _BEAM_RUNNER.value else []
    if _WORKERS.value:
        options += [f"--direct_num_workers={_WORKERS.value}"]
        if _WORKERS.value > 1:
            options += ["--direct_running_mode=multi_processing"]
    for option in _PIPELINE_OPTIONS.value:
        if "=" not in option:
            raise ValueError(f"--beam_pipeline_options takes key=value pairs, got {option!r}.")
        options.append("--" + option.removeprefix("--"))
    return options


def collection_settings(dataset: str) -> dict:
    settings = dict(
        name=_NAME.value,
        source=_SOURCE.value or "",
        frame_size=_FRAME_SIZE.value,
        jpeg_quality=_JPEG_QUALITY.value,
        max_bytes=_MAX_BYTES.value,
        require_captions=not _ALLOW_UNCAPTIONED.value,
    )
    if dataset == "video_collection":
        settings.update(
            clip_frames=_CLIP_FRAMES.value,
            clip_stride=_CLIP_STRIDE.value,
            max_clips_per_video=_MAX_CLIPS.value,
            frame_format=_FRAME_FORMAT.value,
            crf=_CRF.value,
        )
    return settings


def main(argv) -> None:
    if len(argv) != 2 or not _DATA_DIR.value:
        sys.exit(f"usage: python -m mav_jax.data.build {{{','.join(BUILDERS)}}} --data_dir=DIR")
    dataset = argv[1]
    try:
        collection = collection_settings(dataset) if dataset in COLLECTIONS else None
        builder = build(dataset, _DATA_DIR.value, _CONFIG.value, collection, pipeline_options())
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"error: {error}")
    for split, info in builder.info.splits.items():
        print(f"{builder.info.full_name} {split}: {info.num_examples} examples")


def cli() -> None:
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    cli()
