"""The whole cascade at inference, on freshly initialised exports of every stage (each stage's
training is pinned in its own tests): frame counts and resolutions at every stage, given frames
kept exactly, and clear errors for bad prompts and checkpoints that do not form a cascade."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, UNIT_CLIP
from trainer_helpers import subprocess_env

from mav_jax.cascade import Cascade, CascadeError, SamplingOptions
from mav_jax.configs import clip, interpolation, keyframes, prior, sr_high, sr_low
from mav_jax.data.video_io import contact_sheet, write_outputs
from mav_jax.diffusion import make_schedule
from mav_jax.diffusion.frame_motion import steady_motion_guess, steady_velocity
from mav_jax.exports import write_export
from mav_jax.models.clip import unit
from mav_jax.models.tokenizer import PromptTooLongError
from mav_jax.parallel import make_mesh
from mav_jax.stages import stage_from_config
from mav_jax.stages.keyframes import KeyframeStage
from mav_jax.train.step import sharded_init
from mav_jax.train.weights import make_model_fn

UNET = dict(base_channels=16, channel_mults=(1, 2), num_heads=2, attention_levels=(1,))
OPTIONS = SamplingOptions(seed=0, steps=2)


def _configs() -> dict:
    """A consistent tiny chain: 3 keyframes at 16x16 -> 5 frames -> 32x32 -> 64x64."""
    configs = {
        "clip": clip.get_config("tiny"),
        "prior": prior.get_config("tiny"),
        "keyframes": keyframes.get_config("tiny"),
        "interpolation": interpolation.get_config("tiny"),
        "sr_low": sr_low.get_config("tiny"),
        "sr_high": sr_high.get_config("tiny"),
    }
    configs["clip"].clip.update(UNIT_CLIP)
    configs["prior"].prior.update(
        embed_dim=32, text_width=32, context_length=24, width=32, depth=1, num_heads=2
    )
    for name in ("keyframes", "interpolation", "sr_low", "sr_high"):
        configs[name].unet.update(UNET)
    configs["keyframes"].unet.embedding_dim = configs["interpolation"].unet.embedding_dim = 32
    configs["keyframes"].phase = "video"
    configs["keyframes"].data.update(resolution=16, num_frames=3)
    configs["interpolation"].data.update(resolution=16, keyframe_skip=2, num_keyframes=3)
    configs["sr_low"].data.update(resolution=32, factor=2)
    configs["sr_high"].data.update(resolution=64, factor=2)
    return configs


def _export(config, output: str, mesh) -> None:
    _, params = sharded_init(make_model_fn(stage_from_config(config), 0), mesh)
    write_export(output, config, params, {"initialised": True})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("cascade")
    mesh = make_mesh({"fsdp": 8})
    for name, config in _configs().items():
        _export(config, str(directory / name), mesh)
    return str(directory)


@pytest.fixture(scope="module")
def cascade(checkpoints):
    return Cascade.load(checkpoints, make_mesh({"data": 2, "fsdp": 4}))


def test_text_to_video_through_every_stage(cascade):
    prompts = ["a red 3 moving left", "a blue 7 in the center", "a green 1 moving up"]
    outputs = cascade.text_to_video(prompts, OPTIONS)
    shapes = {name: tuple(video.shape) for name, video in outputs.items()}
    assert shapes == {
        "keyframes": (3, 3, 16, 16, 3),
        "interpolation": (3, 5, 16, 16, 3),
        "sr_low": (3, 5, 32, 32, 3),
        "sr_high": (3, 5, 64, 64, 3),
    }
    # The interpolation stage keeps the keyframes exactly, two frames apart.
    np.testing.assert_array_equal(outputs["interpolation"][:, ::2], outputs["keyframes"])
    assert all(bool(jnp.isfinite(v).all()) for v in outputs.values())
    # The same seed gives the same videos.
    again = cascade.text_to_video(prompts, OPTIONS)
    np.testing.assert_allclose(again["sr_high"], outputs["sr_high"], atol=1e-5)
    # The frames' noise correlation reaches the keyframe sampler (other noise, other keyframes).
    embeddings = cascade.embed_prompts(prompts, OPTIONS)
    shared = cascade.keyframes(
        embeddings, dataclasses.replace(OPTIONS, frame_noise_correlation=1.0)
    )
    assert not np.allclose(shared, outputs["keyframes"], atol=1e-3)
    # So does its drift (the shared noise translated frame to frame: other keyframes again).
    drifting = cascade.keyframes(
        embeddings, dataclasses.replace(OPTIONS, frame_noise_correlation=1.0, frame_noise_drift=3.0)
    )
    assert not np.allclose(drifting, shared, atol=1e-3)
    # The steady-motion second pass starts from the first pass's middle keyframe moved at its
    # velocity: with its one step left at t = 0 (2 steps, strength 0.5) it returns that guess.
    first = outputs["keyframes"]
    steady = cascade.keyframes(embeddings, dataclasses.replace(OPTIONS, steady_motion_strength=0.5))
    guess = steady_motion_guess(jnp.asarray(first), steady_velocity(jnp.asarray(first)))
    np.testing.assert_allclose(steady, guess, atol=0.05)
    assert not np.allclose(steady, first, atol=0.05)
    with pytest.raises(
        CascadeError, match=r"keyframes: config.diffusion.steady_motion_strength .* in \[0, 1\]"
    ):
        cascade.keyframes(embeddings, dataclasses.replace(OPTIONS, steady_motion_strength=1.5))


def test_keyframe_candidates_keep_the_one_whose_middle_keyframe_clip_embeds_closest(cascade):
    prompts = ["a red 3 moving left", "a blue 7 in the center", "a green 1 moving up"]
    embeddings = np.asarray(cascade.embed_prompts(prompts, OPTIONS))
    two = dataclasses.replace(OPTIONS, keyframe_candidates=2)
    videos, scores = cascade.keyframe_candidates(embeddings, two)
    assert videos.shape == (3, 2, 3, 16, 16, 3) and scores.shape == (3, 2)
    assert not np.allclose(videos[:, 0], videos[:, 1], atol=1e-3)  # two draws, not one twice
    # A candidate's score: cos(its middle keyframe's CLIP image embedding, its embedding).
    middle = jnp.asarray(np.asarray(videos)[:, :, 1].reshape(-1, 16, 16, 3))
    middle_embeddings = np.asarray(unit(cascade.clip.encode_image(middle))).reshape(3, 2, -1)
    expected = np.einsum("nke,ne->nk", middle_embeddings, embeddings)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    best = cascade.keyframes(embeddings, two)
    np.testing.assert_allclose(
        best, np.asarray(videos)[np.arange(3), np.argmax(scores, axis=1)], atol=1e-6
    )
    with pytest.raises(
        CascadeError, match=r"keyframes: config.diffusion.candidates .* at least 1 .*got -2"
    ):
        cascade.keyframes(embeddings, dataclasses.replace(OPTIONS, keyframe_candidates=-2))
    stage = KeyframeStage(schedule=make_schedule("linear", 100), candidates=0)
    assert any("config.diffusion.candidates" in problem for problem in stage.problems())


def test_a_start_strength_outside_0_to_1_is_a_clear_error(cascade):
    keyframes = np.zeros((1, 3, 16, 16, 3), np.float32)
    with pytest.raises(
        CascadeError,
        match=r"interpolation: config.diffusion.start_strength must be in \(0, 1\], got 1.5",
    ):
        cascade.interpolate_keyframes(
            keyframes, None, dataclasses.replace(OPTIONS, start_strength=1.5)
        )
    with pytest.raises(CascadeError, match="sr_low: config.diffusion.start_strength"):
        cascade.upscale(
            "sr_low",
            np.zeros((1, 5, 16, 16, 3), np.float32),
            dataclasses.replace(OPTIONS, start_strength=0.0),
        )


def test_animating_an_image_keeps_it_as_the_first_frame(cascade):
    image = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    outputs = cascade.from_frames(image, "animate", OPTIONS)
    assert outputs["interpolation"].shape == (1, 5, 16, 16, 3)
    np.testing.assert_array_equal(outputs["interpolation"][0, 0], image[0])
    assert outputs["sr_high"].shape == (1, 5, 64, 64, 3)
    extended = cascade.from_frames(np.repeat(image, 3, axis=0), "extrapolate", OPTIONS)
    assert extended["interpolation"].shape == (1, 5, 16, 16, 3)
    np.testing.assert_array_equal(extended["interpolation"][0, :3], np.repeat(image, 3, axis=0))


def test_variations_follow_a_given_video(cascade):
    video = np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    outputs = cascade.variations(video, OPTIONS, count=2)
    assert outputs["keyframes"].shape == (2, 3, 16, 16, 3)
    assert outputs["sr_high"].shape == (2, 5, 64, 64, 3)


def test_bad_prompts_are_clear_errors(cascade):
    with pytest.raises(ValueError, match="empty"):
        cascade.text_to_video(["a red 3", "  "], OPTIONS)
    with pytest.raises(PromptTooLongError, match="context holds 22"):
        cascade.text_to_video([" ".join(["red"] * 40)], OPTIONS)


def test_missing_and_mismatched_checkpoints_are_clear_errors(checkpoints, tmp_path):
    mesh = make_mesh({"data": 8})
    partial = tmp_path / "partial"
    shutil.copytree(checkpoints, partial)
    shutil.rmtree(partial / "prior")
    with pytest.raises(CascadeError, match="No prior checkpoint"):
        Cascade.load(str(partial), mesh)
    swapped = tmp_path / "swapped"
    shutil.copytree(checkpoints, swapped)
    shutil.rmtree(swapped / "sr_high")
    shutil.copytree(swapped / "sr_low", swapped / "sr_high")
    with pytest.raises(CascadeError, match="holds a 'sr_low' checkpoint"):
        Cascade.load(str(swapped), mesh)
    wrong_size = tmp_path / "wrong_size"
    shutil.copytree(checkpoints, wrong_size)
    shutil.rmtree(wrong_size / "sr_low")
    config = _configs()["sr_low"]
    config.data.update(resolution=64, factor=2)
    _export(config, str(wrong_size / "sr_low"), mesh)
    with pytest.raises(
        CascadeError, match="interpolation makes 16x16 frames but sr_low takes 32x32"
    ):
        Cascade.load(str(wrong_size), mesh)
    # From given frames, a CLIP-conditioned ↑F still needs the CLIP to embed one of them.
    with pytest.raises(CascadeError, match="needs its clip checkpoint"):
        Cascade.load(checkpoints, mesh, ("interpolation", "sr_low", "sr_high"))
    # A cascade loaded with some stages names the one a call needs, rather than a KeyError.
    partial_cascade = Cascade.load(checkpoints, mesh, ("keyframes", "sr_low"))
    keyframes = np.zeros((1, 3, 16, 16, 3), np.float32)
    with pytest.raises(CascadeError, match="without its interpolation stage .*keyframes, sr_low"):
        partial_cascade.interpolate_keyframes(keyframes, None, OPTIONS)
    with pytest.raises(CascadeError, match="without its clip stage"):
        partial_cascade.embed_prompts(["a red 3"], OPTIONS)
    with pytest.raises(CascadeError, match="without its interpolation stage"):
        partial_cascade.from_frames(keyframes[0], "animate", OPTIONS)


def test_outputs_are_mp4_gif_and_a_contact_sheet(tmp_path):
    video = np.random.default_rng(2).integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    written = write_outputs(str(tmp_path / "clip"), video, fps=8.0)
    assert [os.path.basename(p) for p in written] == ["clip.mp4", "clip.gif", "clip.png"]
    assert all(os.path.getsize(p) > 0 for p in written)
    sheet = contact_sheet(video[None])
    assert sheet.shape == (16, 16 * 16, 3)  # 16 evenly spaced frames of 20
    np.testing.assert_array_equal(sheet[:, :16], video[0])
    np.testing.assert_array_equal(sheet[:, -16:], video[-1])


def test_sample_cli_writes_videos_and_reports_errors(checkpoints, tmp_path):
    def run(*flags):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mav_jax.sample",
                f"--checkpoints={checkpoints}",
                "--steps=1",
                *flags,
            ],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
        )

    done = run(
        "--prompt=a red 3 moving left",
        "--until=keyframes",
        "--keep_stages",
        f"--output={tmp_path}/out.mp4",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["captions.jsonl", "out.gif", "out.mp4", "out.png"]
    assert json.loads((tmp_path / "captions.jsonl").read_text()) == {
        "video": "out.mp4",
        "caption": "a red 3 moving left",
    }
    failed = run("--prompt=", f"--output={tmp_path}/x.mp4")
    assert failed.returncode != 0 and "empty" in failed.stderr


def test_compiled_samplers_are_cached_on_the_whole_sampling_options(cascade):
    """Every setting a compiled sampler bakes in is a SamplingOptions field, and the cache keys on
    the options whole: another seed reuses the compiled function, another sampler does not."""
    embeddings = cascade.embed_prompts(["a red 3 moving left"], OPTIONS)
    first = cascade.keyframes(embeddings, OPTIONS)
    compiled = dict(cascade._jitted)
    reseeded = cascade.keyframes(embeddings, dataclasses.replace(OPTIONS, seed=9))
    assert cascade._jitted == compiled  # the seed makes keys outside: nothing recompiled
    assert not np.allclose(reseeded, first, atol=1e-3)
    ddpm = dataclasses.replace(OPTIONS, sampler="ddpm")
    ancestral = cascade.keyframes(embeddings, ddpm)
    assert ("keyframes", ddpm) in cascade._jitted and len(cascade._jitted) == len(compiled) + 1
    assert not np.allclose(ancestral, first, atol=1e-3)
