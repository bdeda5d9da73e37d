"""Evaluators beyond the held-out loss (which tests/test_trainer.py pins through the trainer):
CLIP retrieval, and CLIPSIM / FVD of the videos a stage generates from held-out inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mav_jax.configs import keyframes
from mav_jax.eval.clipsim import video_clipsim
from mav_jax.models.clip import unit
from mav_jax.models.frozen_clip import FrozenClip
from mav_jax.parallel import make_mesh
from mav_jax.stages import stage_from_config, to_uint8
from mav_jax.train.config_checks import ConfigError, check_config
from mav_jax.train.evaluators import EvalContext, Retrieval, SampleQuality, evaluator_problems
from mav_jax.train.weights import load_inference

MESH = {"data": 4, "tensor": 2}  # 4 batch shards: the unit build's 4 captioned eval clips


def _context(stage, graphdef, data_dir):
    mesh = make_mesh(MESH)
    condition = stage.conditioner(mesh)
    return EvalContext(stage, graphdef, mesh, "moving_digits/unit", data_dir, 0, condition)


def test_retrieval_is_top1_caption_matching_over_the_heldout_pairs(clip_export, digits_data_dir):
    config, graphdef, params = load_inference(clip_export, make_mesh(MESH))
    stage = stage_from_config(config)
    evaluator = Retrieval(
        "retrieval", {"num_examples": 4}, _context(stage, graphdef, digits_data_dir)
    )
    got = evaluator.evaluate(params, 4)
    # The same by hand: nearest caption of each image (and image of each caption) by cosine,
    # right when its tokens are the example's own.
    model = nnx.merge(graphdef, params)
    batch = jax.device_get(evaluator.batch)
    images = np.asarray(unit(model.encode_image(jnp.asarray(batch["video"][:, 0]))))
    texts = np.asarray(unit(model.encode_text(jnp.asarray(batch["tokens"]))))
    similarity = images @ texts.T
    tokens = [tuple(t) for t in batch["tokens"]]
    i2t = np.mean([tokens[j] == tokens[i] for i, j in enumerate(similarity.argmax(1))])
    t2i = np.mean([tokens[i] == tokens[j] for j, i in enumerate(similarity.argmax(0))])
    chance = np.mean([[a == b for b in tokens] for a in tokens])
    assert got == pytest.approx({"image_to_text": i2t, "text_to_image": t2i, "chance": chance})
    assert 0 < chance <= 1


def _conditioned_keyframes(clip_export, frames: int, resolution: int):
    config = keyframes.get_config("tiny")
    config.phase, config.clip_from = "video", clip_export
    config.unet.update(
        base_channels=8, channel_mults=(1,), attention_levels=(), num_heads=1, embedding_dim=32
    )
    config.data.update(resolution=resolution, num_frames=frames, frame_skips=(1,))
    return config, stage_from_config(config)


def test_clipsim_of_generated_videos_pairs_each_with_its_heldout_caption(
    clip_export, digits_data_dir
):
    """D^t generates from the held-out clips' CLIP image embeddings (its `sample`); CLIPSIM scores
    each video against its own clip's caption, the same at every evaluation of the same weights."""
    config, stage = _conditioned_keyframes(clip_export, frames=2, resolution=16)
    graphdef, params = nnx.split(stage.build_model(nnx.Rngs(0)), nnx.Param)
    settings = {"num_videos": 4, "sample_steps": 2, "clip_from": clip_export}
    assert not evaluator_problems(_with_evals(config, settings))
    evaluator = SampleQuality("quality", settings, _context(stage, graphdef, digits_data_dir))
    videos = evaluator.videos(params)
    assert videos.shape == (4, 2, 16, 16, 3) and videos.dtype == np.uint8
    expected, _ = stage.sample(graphdef, params, evaluator.key, 4, 2, evaluator.batch)
    np.testing.assert_array_equal(videos, to_uint8(expected))
    clip = FrozenClip(clip_export, make_mesh(MESH))
    captions = [o["caption"].decode() for o in evaluator.others]
    assert all(captions)
    scores = [video_clipsim(clip, v, c, 8) for v, c in zip(videos, captions, strict=True)]
    got = evaluator.evaluate(params, 2)
    assert got == pytest.approx({"clipsim": float(np.mean(scores))}, abs=1e-5)
    assert got == evaluator.evaluate(params, 2)


def _with_evals(config, settings, kind="sample_quality"):
    config = config.copy_and_resolve_references()
    config.evals.quality = {"type": kind, **settings}
    return config


def test_evaluator_settings_are_checked_before_anything_is_built(clip_export, digits_data_dir):
    config, _ = _conditioned_keyframes(clip_export, frames=2, resolution=16)
    problems = evaluator_problems(_with_evals(config, {}))
    assert problems == ["config.evals.quality: set clip_from (CLIPSIM) or i3d (FVD), or both"]
    assert "only the clip stage" in evaluator_problems(_with_evals(config, {}, "retrieval"))[0]
    assert "must be one of" in evaluator_problems(_with_evals(config, {}, "bleu"))[0]
    bad = _with_evals(config, {"timestep_fractions": (0.5, 1.5)}, "heldout_loss")
    assert "timestep_fractions" in evaluator_problems(bad)[0]
    bad.data.update(dataset="moving_digits/unit", data_dir=digits_data_dir)
    with pytest.raises(ConfigError, match="config.evals.quality: timestep_fractions"):
        check_config(bad, stage_from_config(bad))


@pytest.mark.slow  # the FVD arithmetic is pinned in test_fvd.py; this adds the wiring, at ~1 min
def test_fvd_of_generated_videos_against_the_heldout_clips(clip_export, digits_data_dir):
    from mav_jax.eval.frechet import FeatureStats
    from mav_jax.eval.fvd import fvd_from_stats

    config, stage = _conditioned_keyframes(clip_export, frames=9, resolution=8)
    graphdef, params = nnx.split(stage.build_model(nnx.Rngs(0)), nnx.Param)
    settings = {"num_videos": 4, "sample_steps": 1, "i3d": "package"}
    evaluator = SampleQuality("quality", settings, _context(stage, graphdef, digits_data_dir))
    got = evaluator.evaluate(params, 1)
    fake = FeatureStats(400)
    fake.update(np.asarray(evaluator.i3d(evaluator.videos(params)), np.float64))
    assert got["fvd"] == pytest.approx(fvd_from_stats(evaluator.real_stats, fake, "unbiased"))
    assert got["fvd"] > 0


def test_fvd_needs_clips_of_nine_frames(clip_export, digits_data_dir):
    config, stage = _conditioned_keyframes(clip_export, frames=2, resolution=16)
    graphdef, _ = nnx.split(stage.build_model(nnx.Rngs(0)), nnx.Param)
    with pytest.raises(ValueError, match="at least 9 frames"):
        SampleQuality("q", {"i3d": "package"}, _context(stage, graphdef, digits_data_dir))


def test_a_split_too_small_for_the_evaluator_is_a_clear_error(clip_export, digits_data_dir):
    config, graphdef, _ = load_inference(clip_export, make_mesh(MESH))
    context = _context(stage_from_config(config), graphdef, digits_data_dir)
    with pytest.raises(ValueError, match="has 4 records, fewer than the 8 asked"):
        Retrieval("r", {"num_examples": 8}, context)
    with pytest.raises(ValueError, match="multiple of the mesh's batch shards"):
        Retrieval("r", {"num_examples": 6}, context)
    with pytest.raises(ValueError, match="cannot read split 'test'"):
        Retrieval("r", {"num_examples": 4, "split": "test"}, context)
