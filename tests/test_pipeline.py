"""Input pipelines: clip sampling and fps, stage inputs, process shards, resumable iterators."""

import grain.python as grain
import jax
import numpy as np
import pytest

from mav_jax.data.augment import CropFlipScale, resize_shorter_side, to_model_range
from mav_jax.data.clips import (
    ClipSampling,
    SampleClip,
    choose_frame_skip,
    fps_curriculum,
    sample_clip,
)
from mav_jax.data.loader import global_batch, make_loader, video_source
from mav_jax.data.stage_inputs import (
    LowResolution,
    MaskForInterpolation,
    downsample,
    keyframe_mask,
)
from mav_jax.parallel import make_mesh

SOURCE_FPS = 24.0


class FrameIndexVideos:
    """Random-access source whose pixel values are the frame index, so clips reveal their skip."""

    def __init__(self, count: int, frames: int = 80, size: int = 8):
        self.count, self.frames, self.size = count, frames, size

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        video = np.broadcast_to(
            np.arange(self.frames, dtype=np.uint8)[:, None, None, None],
            (self.frames, self.size, self.size, 3),
        )
        return {"video": video.copy(), "fps": np.float32(SOURCE_FPS), "id": np.int32(index)}


def test_fps_is_the_source_rate_over_the_frame_skip():
    sampling = ClipSampling(num_frames=16, frame_skips=(1, 2, 3, 4, 5))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        clip = sample_clip(FrameIndexVideos(1)[0]["video"], SOURCE_FPS, sampling, rng)
        steps = np.diff(clip["video"][:, 0, 0, 0].astype(int))
        assert clip["video"].shape[0] == 16 and np.all(steps == clip["frame_skip"])
        assert clip["fps"] == pytest.approx(SOURCE_FPS / clip["frame_skip"])
        seen.add(int(clip["frame_skip"]))
    assert seen == {1, 2, 3, 4, 5}


def test_only_skips_the_video_is_long_enough_for_are_drawn():
    sampling = ClipSampling(num_frames=16, frame_skips=(1, 5), fps_distribution="beta")
    rng = np.random.default_rng(1)
    assert {choose_frame_skip(sampling, 40, rng) for _ in range(20)} == {1}  # 76 frames needed at 5
    with pytest.raises(ValueError, match="too short"):
        choose_frame_skip(sampling, 10, rng)


def test_beta_fps_prefers_the_rates_its_distribution_favours():
    low_rates = ClipSampling(
        num_frames=4, frame_skips=(1, 2, 4, 8), fps_distribution="beta", beta=(1.0, 8.0)
    )
    rng = np.random.default_rng(2)
    skips = [choose_frame_skip(low_rates, 100, rng) for _ in range(200)]
    assert np.mean(np.asarray(skips) >= 4) > 0.8  # low frame rates = large skips


def test_fps_curriculum_goes_from_high_to_low_frame_rates():
    sampling = ClipSampling(num_frames=8, frame_skips=(4, 1, 2, 8, 3))
    stages = [fps_curriculum(sampling, p).frame_skips for p in (0.0, 0.25, 0.5, 1.0)]
    assert stages[0] == (1,) and stages[-1] == (1, 2, 3, 4, 8)
    assert all(
        set(a) <= set(b) for a, b in zip(stages, stages[1:], strict=False)
    )  # only ever widens
    with pytest.raises(ValueError, match="progress"):
        fps_curriculum(sampling, 1.5)


def test_interpolation_masks_cover_exactly_the_non_key_frames():
    mask = keyframe_mask(76, 5)  # the paper's 16 keyframes -> 76 frames at skip 5
    assert mask.sum() == 16 and np.all(mask[::5] == 1)
    non_key = np.setdiff1d(np.arange(76), np.arange(0, 76, 5))
    assert np.all(mask[non_key] == 0) and len(non_key) == 60
    video = np.random.default_rng(0).uniform(-1, 1, (76, 4, 4, 3)).astype(np.float32)
    out = MaskForInterpolation(5).map({"video": video})
    np.testing.assert_array_equal(out["masked"][::5], video[::5])
    assert np.all(out["masked"][non_key] == 0) and out["mask"].shape == (76, 1, 1, 1)
    with pytest.raises(ValueError, match=r"\(K - 1\) \* 5 \+ 1"):
        keyframe_mask(17, 5)


def test_super_resolution_input_is_the_box_downsampled_target():
    video = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    low = LowResolution(4).map({"video": video})["low_res"]
    assert low.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(low[1, 0, 1], video[1, 0:4, 4:8].mean(axis=(0, 1)), rtol=1e-6)
    with pytest.raises(ValueError, match="cannot be downsampled"):
        downsample(video[:, :6], 4)


def _ids(loader):
    return [int(i) for batch in loader for i in batch["id"]]


def _operations():
    return [SampleClip(ClipSampling(num_frames=4, frame_skips=(1, 2, 3))), CropFlipScale(6)]


def test_processes_read_disjoint_shards_that_cover_the_data():
    source = FrameIndexVideos(24)
    shards = [
        _ids(
            make_loader(
                source,
                _operations(),
                batch_size=4,
                seed=0,
                num_epochs=1,
                shard_options=grain.ShardOptions(index, 2, drop_remainder=True),
            )
        )
        for index in range(2)
    ]
    assert set(shards[0]).isdisjoint(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(24))


def test_a_restored_iterator_yields_exactly_the_next_batches():
    source = FrameIndexVideos(40)
    loader = make_loader(source, _operations(), batch_size=4, seed=3)
    iterator = iter(loader)
    for _ in range(3):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(3)]
    resumed = iter(make_loader(source, _operations(), batch_size=4, seed=3))
    resumed.set_state(state)
    for want, got in zip(expected, [next(resumed) for _ in range(3)], strict=True):
        assert want.keys() == got.keys()
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])
    batch = expected[0]
    assert batch["video"].shape == (4, 4, 6, 6, 3) and batch["video"].dtype == np.float32
    assert batch["video"].min() >= -1 and batch["video"].max() <= 1


def test_local_batches_become_global_arrays_sharded_over_the_mesh():
    mesh = make_mesh({"data": 2, "fsdp": 4})
    local = next(iter(make_loader(FrameIndexVideos(16), _operations(), batch_size=8, seed=0)))
    arrays = global_batch(local, mesh)
    assert arrays["video"].shape == (8, 4, 6, 6, 3)
    assert len(arrays["video"].addressable_shards) == 8
    assert arrays["video"].addressable_shards[0].data.shape == (1, 4, 6, 6, 3)
    np.testing.assert_array_equal(jax.device_get(arrays["fps"]), local["fps"])


def test_moving_digits_clips_flow_through_to_interpolation_batches(tmp_path):
    import tensorflow_datasets as tfds

    from mav_jax.data.moving_digits import MovingDigits, MovingDigitsConfig

    config = MovingDigitsConfig(name="pipeline", num_images=2, num_videos=4, num_eval=1)
    MovingDigits(
        config=config, data_dir=str(tmp_path), file_format="array_record"
    ).download_and_prepare()
    source = tfds.data_source("moving_digits/pipeline", split="video", data_dir=str(tmp_path))
    operations = [
        SampleClip(ClipSampling(num_frames=16, frame_skips=(1, 2, 3, 4, 5))),  # 76 <= 80 frames
        CropFlipScale(32),
        MaskForInterpolation(5),
    ]
    batch = next(iter(make_loader(source, operations, batch_size=2, seed=0)))
    assert batch["video"].shape == (2, 16, 32, 32, 3) and batch["masked"].shape == (
        2,
        16,
        32,
        32,
        3,
    )
    np.testing.assert_allclose(batch["fps"], 24.0 / batch["frame_skip"])
    assert -1.0 <= batch["video"].min() < batch["video"].max() <= 1.0


def test_encoded_records_decode_only_a_clips_frames_into_the_same_clips(
    digits_data_dir, monkeypatch
):
    import tensorflow_datasets as tfds

    from mav_jax.data import clips

    decoded = tfds.data_source("moving_digits/unit", split="video", data_dir=digits_data_dir)
    encoded = video_source("moving_digits/unit", "video", digits_data_dir)
    opened = []
    open_image = clips.Image.open
    monkeypatch.setattr(clips.Image, "open", lambda f: opened.append(f) or open_image(f))
    sampling = ClipSampling(num_frames=5, frame_skips=(1, 3))
    for i in range(len(decoded)):
        frames = encoded[i]["video"]  # (T,) PNG bytes
        assert len(frames) == 80 and all(isinstance(f, bytes) for f in frames)
        expected = sample_clip(decoded[i]["video"], SOURCE_FPS, sampling, np.random.default_rng(i))
        opened.clear()  # TFDS decodes with PIL too: count only the encoded record's decodes
        clip = sample_clip(frames, SOURCE_FPS, sampling, np.random.default_rng(i))
        assert len(opened) == 5  # the clip's frames, not the record's 80
        assert clip["video"].shape == (5, 32, 32, 3) and clip["video"].dtype == np.uint8
        for key in expected:
            np.testing.assert_array_equal(clip[key], expected[key])
    damaged = [b"\x89PNG truncated"] * 80
    with pytest.raises(ValueError, match="does not decode.*rebuild"):
        sample_clip(damaged, SOURCE_FPS, sampling, np.random.default_rng(0))


def test_resize_fit_keeps_the_whole_scene_and_crop_fit_keeps_native_pixels():
    video = np.zeros((2, 32, 48, 3), np.uint8)  # (F, H, W, 3): a bright square in one corner
    video[:, :8, :8] = 255
    rng = np.random.default_rng(0)
    resized = CropFlipScale(16, flip=False).random_map({"video": video}, rng)["video"]
    assert resized.shape == (2, 16, 16, 3)
    # 32x48 -> 16x24 (the whole scene, shrunk), then a 16x16 window of it.
    scene = resize_shorter_side(video, 16)
    assert scene.shape == (2, 16, 24, 3)
    bright = scene[0, :, :, 0] > 127
    assert bright[:4, :4].all() and bright.sum() == 16  # the 8x8 square is now 4x4
    windows = [(to_model_range(scene[:, :, x : x + 16]) == resized).all() for x in range(9)]
    assert any(windows), "the window is a 16x16 crop of the resized scene"
    np.testing.assert_array_equal(resized[0], resized[1])  # the same window for every frame

    patch = CropFlipScale(16, flip=False, fit="crop").random_map({"video": video}, rng)["video"]
    assert patch.shape == (2, 16, 16, 3)
    assert set(np.unique(patch)) <= {-1.0, 1.0}  # native pixels, never interpolated
    with pytest.raises(ValueError, match="smaller than the crop"):
        CropFlipScale(64, fit="crop").random_map({"video": video}, rng)
    assert CropFlipScale(64).random_map({"video": video}, rng)["video"].shape == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="fit must be"):
        CropFlipScale(16, fit="stretch")
