"""Interpolation and both super-resolution stages train with the shared trainer, produce the
frame counts and resolutions they promise, and keep their guarantees at sampling."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import UNIT_CLIP, keyframe_loss_input
from flax import nnx
from trainer_helpers import TINY

from mav_jax.configs import interpolation, sr_high, sr_low
from mav_jax.data.loader import transform_record
from mav_jax.data.video_io import read_video
from mav_jax.diffusion.low_res_consistency import block_means
from mav_jax.nn import SpatioTemporalUNet, transplant_spatial_params
from mav_jax.stages import stage_from_config
from mav_jax.stages.frame_modes import frame_mask, spread_keyframes
from mav_jax.stages.interpolation import blend_given
from mav_jax.train.trainer import train_and_evaluate

SMALL_UNET = {k: v for k, v in TINY.items() if k.startswith(("unet.", "train."))}


def _config(module, data_dir, **data):
    config = module.get_config("tiny")
    for dotted, value in SMALL_UNET.items():
        section, name = dotted.split(".")
        config[section][name] = value
    config.train.num_steps, config.train.checkpoint_every = 2, 2
    config.mesh.data = 8
    config.data.dataset, config.data.data_dir = "moving_digits/unit", data_dir
    for name, value in data.items():
        config.data[name] = value
    return config


@pytest.fixture(scope="module")
def trained(digits_data_dir, clip_export, tmp_path_factory):
    """Each stage after 2 training steps: (config, stage, final state, workdir). ↑F is conditioned
    on the CLIP image embedding, as in the quickstart."""
    runs = {}
    for name, module, data in [
        (
            "interpolation",
            interpolation,
            {"resolution": 16, "num_keyframes": 3, "keyframe_skip": 2},
        ),
        ("sr_low", sr_low, {"resolution": 16, "factor": 2, "num_frames": 3}),
        ("sr_high", sr_high, {"resolution": 16, "factor": 2}),
    ]:
        config = _config(module, digits_data_dir, **data)
        if name == "interpolation":
            config.clip_from, config.unet.embedding_dim = clip_export, UNIT_CLIP["embed_dim"]
        workdir = tmp_path_factory.mktemp(name)
        state = train_and_evaluate(config, str(workdir))
        runs[name] = (config, stage_from_config(config), state, workdir)
    return runs


@pytest.mark.parametrize("name, frames", [("interpolation", 5), ("sr_low", 3), ("sr_high", 1)])
def test_each_stage_trains_and_samples_at_its_shape(trained, name, frames):
    _, stage, state, workdir = trained[name]
    assert int(state.step) == 2
    video, _ = read_video(str(workdir / "samples" / "step_00000002.mp4"))
    assert video.shape[:3] == (frames, 16, 2 * 16)  # 2 samples side by side at 16x16


def test_interpolation_keeps_the_given_frames_exactly_and_follows_the_embedding(trained):
    _, stage, state, _ = trained["interpolation"]
    graphdef = nnx.graphdef(
        nnx.eval_shape(lambda: SpatioTemporalUNet(stage.unet, rngs=nnx.Rngs(0)))
    )
    video = jax.random.uniform(jax.random.key(0), (2, 5, 16, 16, 3), minval=-1, maxval=1)
    mask = jnp.asarray(np.stack([frame_mask("interpolate", 5, 2), frame_mask("animate", 5, 2)]))
    embeddings = jax.random.normal(jax.random.key(2), (2, 2, stage.unet.embedding_dim))
    embeddings /= jnp.linalg.norm(embeddings, axis=-1, keepdims=True)
    outs = [
        np.asarray(
            stage.generate(
                graphdef,
                state.ema,
                jax.random.key(1),
                video,
                mask,
                jnp.full((2,), 12.0),
                2,
                embedding,
            )
        )
        for embedding in embeddings
    ]
    known = np.asarray(mask, bool)
    for out in outs:
        np.testing.assert_array_equal(out[known], np.asarray(video)[known])
        assert not np.allclose(out[~known], np.asarray(video)[~known])
    # The same noise with another embedding: other in-between frames (the condition is used).
    assert np.abs(outs[0][~known] - outs[1][~known]).max() > 1e-3
    with pytest.raises(ValueError, match="conditioned on a CLIP image embedding"):
        stage.generate(graphdef, state.ema, jax.random.key(1), video, mask, jnp.full((2,), 12.0), 2)
    # Started part-way from the given frames' blend: still exactly the given frames, others new.
    blended = dataclasses.replace(stage, start_strength=0.5)
    out = np.asarray(
        blended.generate(
            graphdef,
            state.ema,
            jax.random.key(1),
            video,
            mask,
            jnp.full((2,), 12.0),
            4,
            embeddings[0],
        )
    )
    np.testing.assert_array_equal(out[known], np.asarray(video)[known])
    assert not np.allclose(out[~known], outs[0][~known], atol=1e-3)


def test_blend_given_fills_each_missing_frame_from_the_given_frames_either_side():
    video = jnp.arange(7, dtype=jnp.float32)[None, :, None, None, None] * jnp.ones((4, 7, 2, 2, 3))
    masks = jnp.asarray(
        [
            frame_mask("interpolate", 7, 3),
            frame_mask("extrapolate", 7, 3),
            frame_mask("animate", 7, 3),
            np.zeros(7),
        ]
    )
    filled = np.asarray(blend_given(video * 10, masks))[:, :, 0, 0, 0]  # (4, F)
    np.testing.assert_allclose(filled[0], [0, 10, 20, 30, 40, 50, 60], atol=1e-5)  # linear between
    np.testing.assert_allclose(filled[1], [0, 10, 20, 30, 30, 30, 30])  # the last given, held
    np.testing.assert_allclose(filled[2], [0] * 7)  # the one given frame, held
    np.testing.assert_allclose(filled[3], [0] * 7)  # nothing given: zeros
    reversed_mask = jnp.asarray([[0, 0, 1, 0, 0, 0, 1.0]])
    np.testing.assert_allclose(
        np.asarray(blend_given(video[:1] * 10, reversed_mask))[0, :, 0, 0, 0],
        [20, 20, 20, 30, 40, 50, 60],
        atol=1e-5,
    )


def test_blend_given_following_motion_carries_a_moving_object_across():
    """A blob moving 3 px to the right and 3 down per keyframe (one pixel a frame, keyframes 3
    frames apart): the motion-compensated blend puts it where it truly is in every frame, where
    the linear blend fades it out at one place and in at the next."""
    rng = np.random.default_rng(0)
    background = np.full((16, 16, 3), -1.0, np.float32)
    blob = rng.uniform(0, 1, (4, 4, 3)).astype(np.float32)
    video = np.stack([background] * 7)
    for f in range(7):
        video[f, 2 + f : 6 + f, 3 + f : 7 + f] = blob
    mask = jnp.asarray([frame_mask("interpolate", 7, 3)])
    given = jnp.where(mask[:, :, None, None, None] > 0, jnp.asarray(video)[None], 0.0)
    moved = np.asarray(blend_given(given, mask, follow_motion=True))[0]
    np.testing.assert_allclose(moved, video, atol=1e-5)
    faded = np.asarray(blend_given(given, mask))[0]
    assert np.abs(faded[1] - video[1]).max() > 0.3
    # Extrapolated (the first 4 frames given), the blob moves on at the given frames' velocity;
    # the linear blend copies the last given frame.
    extended = jnp.asarray([frame_mask("extrapolate", 7, 3)])
    given = jnp.where(extended[:, :, None, None, None] > 0, jnp.asarray(video)[None], 0.0)
    np.testing.assert_allclose(
        np.asarray(blend_given(given, extended, follow_motion=True))[0], video, atol=1e-5
    )
    np.testing.assert_array_equal(
        np.asarray(blend_given(given, extended))[0, 4:], np.stack([video[3]] * 3)
    )
    # Animated (one frame given), it moves at the velocity asked for, or stays a copy.
    animated = jnp.asarray([frame_mask("animate", 7, 3)])
    given = jnp.where(animated[:, :, None, None, None] > 0, jnp.asarray(video)[None], 0.0)
    one_a_frame = blend_given(given, animated, follow_motion=True, still_velocity=jnp.ones((1, 2)))
    np.testing.assert_allclose(np.asarray(one_a_frame)[0], video, atol=1e-5)
    np.testing.assert_array_equal(
        np.asarray(blend_given(given, animated, follow_motion=True))[0], np.stack([video[0]] * 7)
    )


@pytest.mark.parametrize("name", ["interpolation", "sr_low", "sr_high"])
@pytest.mark.parametrize("strength", [0.0, 1.5])
def test_start_strength_outside_0_to_1_is_a_config_problem(name, strength):
    config = {"interpolation": interpolation, "sr_low": sr_low, "sr_high": sr_high}[
        name
    ].get_config("tiny")
    config.diffusion.start_strength = strength
    problems = " ".join(stage_from_config(config).problems())
    assert f"config.diffusion.start_strength must be in (0, 1], got {strength}" in problems


def test_a_negative_animation_speed_is_a_config_problem():
    config = interpolation.get_config("tiny")
    config.diffusion.animation_speed = -0.5
    assert "animation_speed is pixels a frame" in " ".join(stage_from_config(config).problems())


def test_keyframes_are_spread_skip_apart_with_zeros_between_and_marked_given():
    keyframes = np.arange(1, 2 * 3 * 2 + 1, dtype=np.float32).reshape(2, 3, 1, 1, 2)  # (N, K, ...)
    video, mask = spread_keyframes(keyframes, 3)
    assert video.shape == (2, 7, 1, 1, 2)  # (K - 1) * skip + 1 frames
    np.testing.assert_array_equal(mask, [1, 0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(video[:, mask == 1], keyframes)
    assert not video[:, mask == 0].any()


def test_sr_high_starts_every_frame_from_the_same_noise(trained):
    """Identical low-res frames come out identical only when the noise is shared (SR_h)."""
    low = jnp.broadcast_to(jax.random.uniform(jax.random.key(2), (1, 1, 8, 8, 3)), (1, 3, 8, 8, 3))
    for name, shared in [("sr_high", True), ("sr_low", False)]:
        _, stage, state, _ = trained[name]
        graphdef = nnx.graphdef(
            nnx.eval_shape(lambda s=stage: SpatioTemporalUNet(s.unet, rngs=nnx.Rngs(0)))
        )
        out = np.asarray(
            stage.upscale(graphdef, state.ema, jax.random.key(3), low, jnp.full((1,), 12.0), 2)
        )
        assert out.shape == (1, 3, 16, 16, 3)
        assert np.array_equal(out[:, 0], out[:, 1]) == shared
    # Started part-way from the upsampled input, SR_h's frames still share their noise.
    _, stage, state, _ = trained["sr_high"]
    graphdef = nnx.graphdef(
        nnx.eval_shape(lambda: SpatioTemporalUNet(stage.unet, rngs=nnx.Rngs(0)))
    )
    upscale = lambda strength: np.asarray(
        dataclasses.replace(stage, start_strength=strength).upscale(  # noqa: E731
            graphdef, state.ema, jax.random.key(3), low, None, 4
        )
    )
    started = upscale(0.5)
    np.testing.assert_array_equal(started[:, 0], started[:, 1])
    assert started.shape == (1, 3, 16, 16, 3) and not np.allclose(started, upscale(1.0), atol=1e-3)


def test_sr_held_to_its_input_upscales_to_frames_that_average_back_to_it(trained):
    """low_res_consistency 1: each 2x2 block of SR_h's and SR^t_l's output averages to the input
    pixel it came from (up to the clipping of pixels pushed past [-1, 1]); 0 leaves the barely
    trained network's own, far-off averages."""
    low = jax.random.uniform(jax.random.key(2), (1, 3, 8, 8, 3), minval=-0.3, maxval=0.3)
    for name in ("sr_high", "sr_low"):
        _, stage, state, _ = trained[name]
        graphdef = nnx.graphdef(
            nnx.eval_shape(lambda s=stage: SpatioTemporalUNet(s.unet, rngs=nnx.Rngs(0)))
        )
        off = {
            held: np.abs(
                block_means(
                    dataclasses.replace(stage, low_res_consistency=held).upscale(
                        graphdef, state.ema, jax.random.key(3), low, jnp.full((1,), 12.0), 3
                    ),
                    2,
                )
                - low
            ).mean()
            for held in (0.0, 1.0)
        }
        assert off[1.0] < 0.01 and off[0.0] > 0.05, (name, off)
    config = sr_high.get_config("tiny")
    config.diffusion.low_res_consistency = 1.5
    assert "low_res_consistency is the fraction" in " ".join(stage_from_config(config).problems())


def test_a_stage_with_more_input_channels_starts_as_the_one_it_is_initialised_from(video_cfg):
    """Keyframes -> interpolation: the new input channels start at zero, so whatever the masked
    frames hold, the new model computes the old one's output."""
    source = SpatioTemporalUNet(video_cfg.replace(extra_in_channels=0), rngs=nnx.Rngs(4))
    target = SpatioTemporalUNet(video_cfg, rngs=nnx.Rngs(5))
    assert (
        transplant_spatial_params(nnx.state(source, nnx.Param), target, expand_input_channels=True)
        == set()
    )
    x = jax.random.normal(jax.random.key(6), (1, 2, 8, 8, 3))
    extra = jax.random.normal(jax.random.key(7), (1, 2, 8, 8, 4))
    cond = {
        "fps": jnp.array([8.0]),
        "noise_aug_level": jnp.array([3.0]),
        "embedding": jnp.ones((1, video_cfg.embedding_dim)),
    }
    np.testing.assert_allclose(
        target(x, jnp.array([5]), extra=extra, **cond), source(x, jnp.array([5]), **cond), atol=1e-5
    )
    with pytest.raises(ValueError, match="Shape mismatch"):
        transplant_spatial_params(
            nnx.state(source, nnx.Param), SpatioTemporalUNet(video_cfg, rngs=nnx.Rngs(5))
        )


def test_super_resolution_trains_on_native_patches_when_asked(digits_data_dir):
    config = _config(sr_high, digits_data_dir, resolution=16, factor=2, crop=8)
    stage = stage_from_config(config)
    assert stage.problems() == []
    record = {
        "video": np.random.default_rng(0).integers(0, 255, (1, 32, 32, 3), np.uint8),
        "fps": np.float32(24.0),
    }
    record = transform_record(stage.operations(), record, np.random.default_rng(1))
    assert record["video"].shape == (1, 8, 8, 3) and record["low_res"].shape == (1, 4, 4, 3)
    batch = {k: jnp.asarray(v)[None] for k, v in record.items()}  # a batch of one patch
    model = SpatioTemporalUNet(stage.unet, rngs=nnx.Rngs(0))
    loss, _ = stage.loss(model, batch, jax.random.key(0))
    assert np.isfinite(float(loss))
    assert stage.resolution == 16  # sampling still makes whole 16x16 frames
    config.data.crop = 7  # not divisible by the factor (nor by the U-Net's downsampling)
    problems = stage_from_config(config).problems()
    assert any("config.data.crop=7" in p for p in problems), problems
    config.data.crop = 32
    assert any("must be at most" in p for p in stage_from_config(config).problems())


@pytest.mark.parametrize("correlation", [0.0, 0.5, 1.0])
def test_initial_noise_is_standard_normal_per_frame_with_the_asked_correlation(correlation):
    from mav_jax.stages.conditioned import initial_noise

    x = np.asarray(initial_noise(jax.random.key(0), (64, 3, 8, 8, 3), correlation))
    assert abs(x.std() - 1.0) < 0.03 and abs(x.mean()) < 0.03
    assert abs(np.corrcoef(x[:, 0].ravel(), x[:, 2].ravel())[0, 1] - correlation) < 0.03
    assert np.array_equal(x[:, 0], x[:, 1]) == (correlation == 1.0)
    with pytest.raises(ValueError, match="frame_correlation"):
        initial_noise(jax.random.key(0), (1, 2, 4, 4, 3), 1.5)


@pytest.mark.parametrize("correlation", [0.0, 1.0])
def test_the_keyframe_loss_noises_the_frames_with_the_training_correlation(correlation):
    """With clean frames of zeros, x_t is the added noise: shared by the frames at 1, not at 0."""
    x_t = np.asarray(
        keyframe_loss_input(
            jnp.zeros((2, 3, 4, 4, 3)), training_frame_noise_correlation=correlation
        )
    )
    assert np.array_equal(x_t[:, 0], x_t[:, 2]) == (correlation == 1.0)
    assert np.abs(x_t).max() > 0


def test_frame_noise_correlations_outside_0_to_1_are_config_problems():
    from mav_jax.diffusion import make_schedule
    from mav_jax.stages.keyframes import KeyframeStage

    stage = KeyframeStage(
        schedule=make_schedule("linear", 100),
        frame_noise_correlation=1.2,
        training_frame_noise_correlation=-0.1,
    )
    problems = " ".join(stage.problems())
    assert "frame_noise_correlation must be in [0, 1], got 1.2" in problems
    assert "training_frame_noise_correlation must be in [0, 1], got -0.1" in problems
