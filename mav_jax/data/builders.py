"""Build a registered mav_jax TFDS dataset (what `python -m mav_jax.data.build` runs)."""

from __future__ import annotations

from collections.abc import Sequence

BUILDERS = ("moving_digits", "video_collection", "image_collection")
COLLECTIONS = ("video_collection", "image_collection")


# Beam 2.78's DirectRunner first tries to download the Prism runner binary from GitHub; a build
# must not reach the network, so local builds run on the runner DirectRunner falls back to.
LOCAL_RUNNER = "FnApiRunner"


def beam_options(pipeline_options: Sequence[str]) -> list[str]:
    """Beam pipeline options for a collection build: DirectRunner (or no runner) becomes the local
    FnApiRunner, which honours --direct_num_workers and --direct_running_mode."""
    options = [o for o in pipeline_options if not o.startswith("--runner=")]
    runners = [o.split("=", 1)[1] for o in pipeline_options if o.startswith("--runner=")]
    runner = runners[-1] if runners else "DirectRunner"
    if runner in ("DirectRunner", "direct"):
        runner = LOCAL_RUNNER
    return [f"--runner={runner}", *options]


def beam_download_config(pipeline_options: Sequence[str] = ()):
    """TFDS's download config running a collection build's Beam pipeline with these options (e.g.
    ['--direct_num_workers=2', '--direct_running_mode=multi_processing']); none: this process."""
    import tensorflow_datasets as tfds
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(beam_options(pipeline_options))  # never sys.argv
    return tfds.download.DownloadConfig(beam_options=options)


def collection_builder(dataset: str, data_dir: str, settings: dict):
    """A collection builder (`video_collection` or `image_collection`) for the config `settings`
    (CollectionConfig fields; `name` is the config's name, e.g. 'webvid')."""
    if dataset == "video_collection":
        from mav_jax.data.video_collection import VideoCollection as builder_class
        from mav_jax.data.video_collection import VideoCollectionConfig as config_class
    elif dataset == "image_collection":
        from mav_jax.data.image_collection import ImageCollection as builder_class
        from mav_jax.data.image_collection import ImageCollectionConfig as config_class
    else:
        raise ValueError(f"Unknown collection '{dataset}'; choose one of {COLLECTIONS}.")
    config = config_class(**settings)
    found = config.problems()
    if found:
        raise ValueError("; ".join(found))
    return builder_class(config=config, data_dir=data_dir, file_format="array_record")


def build(
    dataset: str,
    data_dir: str,
    config: str | None = None,
    collection: dict | None = None,
    pipeline_options: Sequence[str] = (),
):
    """Build a registered dataset; returns its builder. `config` names a Moving Digits config;
    `collection` holds a collection's settings; `pipeline_options` are Beam's (collections)."""
    if dataset == "moving_digits":
        from mav_jax.data.moving_digits import MovingDigits

        builder = MovingDigits(config=config, data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare()
        return builder
    if dataset not in COLLECTIONS:
        raise ValueError(f"Unknown dataset '{dataset}'; choose one of {BUILDERS}.")
    builder = collection_builder(dataset, data_dir, collection or {})
    builder.download_and_prepare(download_config=beam_download_config(pipeline_options))
    return builder
