"""CLIPSIM with mav_jax's CLIP: the mean frame-caption cosine similarity, and its input errors."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from mav_jax.data.video_io import write_mp4
from mav_jax.eval.clipsim import clipsim
from mav_jax.models.frozen_clip import FrozenClip
from mav_jax.parallel import make_mesh


@pytest.fixture(scope="module")
def clip(clip_export):
    return FrozenClip(clip_export, make_mesh({"data": 8}))


def test_clipsim_is_the_mean_frame_caption_cosine(clip, digits_data_dir, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("TFDS_DATA_DIR", digits_data_dir)
    result = clipsim(clip, "tfds:moving_digits/unit:eval", num_videos=2)
    data = tfds.data_source("moving_digits/unit", split="eval", data_dir=digits_data_dir)
    want = []
    for i in range(2):
        video = np.asarray(data[i]["video"], np.float32) / 127.5 - 1.0
        image = np.asarray(clip.encode_image(jnp.asarray(video)))
        tokens = clip.tokenize([data[i]["caption"].decode()])
        text = np.asarray(clip.encode_text(jnp.asarray(tokens))[0])
        cos = image @ text[0] / np.linalg.norm(image, axis=1) / np.linalg.norm(text[0])
        want.append(cos.mean())
    np.testing.assert_allclose(result.per_video, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.clipsim, np.mean(want), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="fewer than the 99 asked"):
        clipsim(clip, "tfds:moving_digits/unit:eval", num_videos=99)


def test_clipsim_folders_need_captions(clip, tmp_path):
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    write_mp4(str(tmp_path / "a.mp4"), frames, 8.0)
    with pytest.raises(FileNotFoundError, match="captions.jsonl"):
        clipsim(clip, str(tmp_path))
    (tmp_path / "captions.jsonl").write_text(json.dumps({"video": "a.mp4", "caption": ""}) + "\n")
    with pytest.raises(ValueError, match="needs both 'video' and 'caption'"):
        clipsim(clip, str(tmp_path))
    (tmp_path / "captions.jsonl").write_text(json.dumps({"video": "a.mp4", "caption": "a red 3"}))
    result = clipsim(clip, str(tmp_path))
    assert len(result.per_video) == 1 and -1.0 <= result.clipsim <= 1.0
