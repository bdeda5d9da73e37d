"""User video collections: real encoded files, bad ones skipped with reasons, good ones kept."""

import numpy as np
import tensorflow_datasets as tfds
from conftest import encode_video

from mav_jax.data.manifest import read_manifest
from mav_jax.data.video_collection import VideoCollection, VideoCollectionConfig


def _gradient_video(frames: int, height: int, width: int, shift: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [
            np.stack([(x * 4 + t * shift) % 256, y * 4 % 256, np.full_like(x, 128)], -1)
            for t in range(frames)
        ]
    ).astype(np.uint8)


def test_good_videos_are_kept_and_bad_ones_reported_with_reasons(tmp_path):
    encode_video(tmp_path / "good_a.mp4", _gradient_video(20, 48, 64, 3), fps=12)
    encode_video(tmp_path / "good_b.mp4", _gradient_video(24, 64, 48, 5), fps=25)
    encode_video(tmp_path / "short.mp4", _gradient_video(5, 48, 64, 3), fps=12)
    whole = (tmp_path / "good_a.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (tmp_path / "zero.mp4").write_bytes(b"")
    manifest = tmp_path / "videos.csv"
    manifest.write_text(
        "path,caption\n"
        "good_a.mp4,stripes sliding right\n"
        "truncated.mp4,broken\n"
        "zero.mp4,nothing\n"
        "short.mp4,too brief\n"
        "good_b.mp4,faster stripes\n"
        "missing.mp4,not there\n"
    )
    config = VideoCollectionConfig(name="unit", source=str(manifest), frame_size=32, min_frames=16)
    builder = VideoCollection(
        config=config, data_dir=str(tmp_path / "tfds"), file_format="array_record"
    )
    builder.download_and_prepare()

    data = tfds.data_source("video_collection/unit", split="train", data_dir=str(tmp_path / "tfds"))
    kept = sorted(
        (ex["caption"].decode(), float(ex["fps"]), np.asarray(ex["video"]).shape) for ex in data
    )
    assert kept == [
        ("faster stripes", 25.0, (24, 32, 32, 3)),
        ("stripes sliding right", 12.0, (20, 32, 32, 3)),
    ]
    skipped = {
        reason: [item.split(":")[0].rsplit("/", 1)[-1] for item in items]
        for reason, items in builder.skipped.items()
    }
    assert skipped == {
        "empty": ["zero.mp4"],
        "unreadable": ["truncated.mp4", "missing.mp4"],
        "too short": ["short.mp4"],
    }
    report = builder.report()
    assert "skipped 4 file(s)" in report and "too short: 1" in report


def test_manifests_in_every_format_resolve_relative_paths(tmp_path):
    (tmp_path / "a.tsv").write_text("videoid\tcontentUrl\tname\n1\tclips/x.mp4\ta cat\n")
    (tmp_path / "b.jsonl").write_text(
        '{"video": "/abs/y.mp4", "text": "a dog"}\n{"path": "z.mp4"}\n'
    )
    assert read_manifest(str(tmp_path / "a.tsv")) == [(str(tmp_path / "clips/x.mp4"), "a cat")]
    assert read_manifest(str(tmp_path / "b.jsonl")) == [
        ("/abs/y.mp4", "a dog"),
        (str(tmp_path / "z.mp4"), ""),
    ]


def test_image_collections_from_a_folder_with_sidecar_captions(tmp_path):
    from PIL import Image

    from mav_jax.data.image_collection import ImageCollection, ImageCollectionConfig

    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(_gradient_video(1, 40, 60, 0)[0]).save(folder / "a.png")
    (folder / "a.txt").write_text("a striped card\n")
    Image.fromarray(_gradient_video(1, 50, 30, 0)[0]).save(folder / "b.jpg")
    (folder / "c.png").write_bytes(b"")
    (folder / "d.png").write_bytes(b"\x89PNG not really")
    config = ImageCollectionConfig(name="unit", source=str(folder), frame_size=16)
    builder = ImageCollection(
        config=config, data_dir=str(tmp_path / "tfds"), file_format="array_record"
    )
    builder.download_and_prepare()
    data = tfds.data_source("image_collection/unit", split="train", data_dir=str(tmp_path / "tfds"))
    got = sorted((ex["caption"].decode(), np.asarray(ex["video"]).shape) for ex in data)
    assert got == [("", (1, 16, 16, 3)), ("a striped card", (1, 16, 16, 3))]
    assert {k: len(v) for k, v in builder.skipped.items()} == {"empty": 1, "unreadable": 1}
