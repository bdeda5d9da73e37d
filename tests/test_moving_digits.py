"""The embedded Moving Digits TFDS builder: offline, deterministic, captions that say what is shown."""

import hashlib
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mav_jax.data.digits_render import (
    BACKGROUND,
    COLORS,
    DIGIT_WORDS,
    handwritten_digits,
    render_clip,
    scan_index,
)
from mav_jax.data.moving_digits import MovingDigits, MovingDigitsConfig

SMALL = dict(name="unit", num_images=24, num_videos=3, num_eval=4)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The same small config built twice, in two directories, with the network cut off."""
    original = socket.socket.connect

    def refuse(*args, **kwargs):
        raise AssertionError("the Moving Digits build tried to use the network")

    socket.socket.connect = refuse
    try:
        dirs = []
        for name in ("first", "second"):
            data_dir = tmp_path_factory.mktemp(name)
            builder = MovingDigits(
                config=MovingDigitsConfig(**SMALL),
                data_dir=str(data_dir),
                file_format="array_record",
            )
            builder.download_and_prepare()
            dirs.append(data_dir)
    finally:
        socket.socket.connect = original
    return dirs


def _data_files(root: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*array_record*"))
    }


def _split(data_dir, split):
    return tfds.data_source(f"moving_digits/{SMALL['name']}", split=split, data_dir=str(data_dir))


def test_builds_offline_twice_identically(built):
    first, second = (_data_files(d) for d in built)
    assert len(first) >= 3 and first == second


def test_splits_hold_images_unlabeled_clips_and_captioned_clips(built):
    images, videos, evals = (_split(built[0], s) for s in ("image_text", "video", "eval"))
    assert (len(images), len(videos), len(evals)) == (24, 3, 4)
    for ex in videos:
        video = np.asarray(ex["video"])
        assert video.shape == (80, 32, 32, 3) and video.dtype == np.uint8
        assert ex["caption"] == b"" and ex["fps"] == 24.0
        # It moves: frames differ, and the background stays dark.
        assert np.abs(video[0].astype(int) - video[40].astype(int)).sum() > 0
        assert np.median(video) < 30
    for ex in list(images) + list(evals):
        text = ex["caption"].decode()
        digit, color = int(ex["digit"]), list(COLORS)[int(ex["color"])]
        assert color in text and (str(digit) in text or DIGIT_WORDS[digit] in text), text
    assert all(np.asarray(ex["video"]).shape == (1, 32, 32, 3) for ex in images)
    wordings = {ex["caption"].decode().split(" ")[0] for ex in images}
    assert len(wordings) >= 3  # several templates, not one


def test_digit_pixels_take_the_named_colour(built):
    ex = _split(built[0], "eval")[0]
    video = np.asarray(ex["video"]).astype(np.float32)
    bright = video.reshape(-1, 3)[video.reshape(-1, 3).max(axis=1) > 150]
    expected = np.array(COLORS[list(COLORS)[int(ex["color"])]], np.float32)
    direction = bright.mean(axis=0) / np.linalg.norm(bright.mean(axis=0))
    assert direction @ (expected / np.linalg.norm(expected)) > 0.98


def test_build_command_rejects_unknown_datasets(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mav_jax.data.build", "webvid", f"--data_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Unknown dataset 'webvid'" in result.stderr


def test_scan_index_is_the_scan_render_clip_draws():
    images, _ = handwritten_digits()
    for seed in range(20):
        clip = render_clip(seed, num_frames=1, frame_size=16)  # the digit at its scan's own 8x8
        r, c = clip.positions[0].astype(int)
        drawn = np.any(clip.frames[0, r : r + 8, c : c + 8] != BACKGROUND, axis=-1)
        np.testing.assert_array_equal(drawn, images[scan_index(seed)] > 0)
