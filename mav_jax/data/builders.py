"""Build a registered mav_jax TFDS dataset (what `python -m mav_jax.data.build` runs)."""

from __future__ import annotations

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
