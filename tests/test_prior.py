"""The prior P and the CLIP-conditioned keyframe decoder, on the frozen CLIP of `clip_export`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import UNIT_CLIP
from flax import nnx
from trainer_helpers import tiny_config

from mav_jax.configs import prior as prior_configs
from mav_jax.models.frozen_clip import FrozenClip, token_mask
from mav_jax.models.prior import DiffusionPrior, PriorConfig
from mav_jax.parallel import make_mesh
from mav_jax.stages import stage_from_config
from mav_jax.stages.prior import sample_image_embeddings
from mav_jax.train.config_checks import ConfigError
from mav_jax.train.trainer import train_and_evaluate

UNIT_PRIOR = dict(embed_dim=32, text_width=32, context_length=24, width=32, depth=2, num_heads=2)


def _prior_inputs(batch=2, length=24, seed=0):
    rng = np.random.default_rng(seed)
    tokens = np.zeros((batch, length), np.int32)
    tokens[:, :5] = rng.integers(1, 90, (batch, 5))
    tokens[:, 5] = 100  # the end token: the highest id
    return {
        "tokens": jnp.asarray(tokens),
        "text_tokens": jnp.asarray(rng.standard_normal((batch, length, 32)), jnp.float32),
        "text_embedding": jnp.asarray(rng.standard_normal((batch, 32)), jnp.float32),
        "x_t": jnp.asarray(rng.standard_normal((batch, 32)), jnp.float32),
    }


def _call(model, inputs, **changes):
    x = {**inputs, **changes}
    return model(
        x["x_t"],
        jnp.array([10, 500]),
        text_tokens=x["text_tokens"],
        token_mask=token_mask(x["tokens"]),
        text_embedding=x["text_embedding"],
        embedding_mask=x.get("embedding_mask"),
    )


def test_prior_reads_only_real_tokens_and_drops_text_for_guidance():
    model = DiffusionPrior(PriorConfig(**UNIT_PRIOR), rngs=nnx.Rngs(0))
    inputs = _prior_inputs()
    base = _call(model, inputs)
    assert base.shape == (2, 32)
    # Features at padding positions (after the end token) change nothing.
    padded = inputs["text_tokens"].at[:, 10:].set(7.0)
    np.testing.assert_allclose(_call(model, inputs, text_tokens=padded), base, atol=1e-5)
    # A real token's features do.
    changed = inputs["text_tokens"].at[:, 2].set(7.0)
    assert not np.allclose(_call(model, inputs, text_tokens=changed), base, atol=1e-3)
    # With the text dropped (embedding_mask False) the output ignores the text entirely.
    dropped = jnp.array([False, False])
    other = _prior_inputs(seed=1)
    np.testing.assert_allclose(
        _call(model, inputs, embedding_mask=dropped),
        _call(model, {**other, "x_t": inputs["x_t"]}, embedding_mask=dropped),
        atol=1e-5,
    )


def _prior_config(data_dir, clip_from):
    config = prior_configs.get_config("tiny")
    config.clip_from = clip_from
    config.prior.update(UNIT_PRIOR)
    config.data.update(dataset="moving_digits/unit", data_dir=data_dir, resolution=16)
    config.train.update(num_steps=4, global_batch_size=16, checkpoint_every=4, log_every=2)
    config.mesh.update(data=2, fsdp=4)
    return config


def test_prior_trains_on_the_frozen_clip_and_samples_unit_embeddings(
    digits_data_dir, clip_export, tmp_path
):
    config = _prior_config(digits_data_dir, clip_export)
    state = train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 4
    stage = stage_from_config(config)
    mesh = make_mesh({"data": 8})
    clip = FrozenClip(clip_export, mesh)
    tokens = jnp.asarray(clip.tokenize(["a red 3 in the center", "a blue 5 at the top left"]))
    text_embedding, text_tokens = clip.encode_text(tokens)
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: stage.build_model(nnx.Rngs(0))))
    embeddings = sample_image_embeddings(
        graphdef,
        state.ema,
        jax.random.key(0),
        stage.schedule,
        text_tokens,
        tokens,
        text_embedding,
        num_steps=3,
        guidance_scale=2.0,
    )
    assert embeddings.shape == (2, UNIT_CLIP["embed_dim"])
    np.testing.assert_allclose(jnp.linalg.norm(embeddings, axis=-1), 1.0, rtol=1e-5)


def test_prior_needs_a_matching_clip(digits_data_dir, clip_export, tmp_path):
    config = _prior_config(digits_data_dir, "")
    with pytest.raises(ConfigError, match="clip_from"):
        train_and_evaluate(config, str(tmp_path / "none"))
    config = _prior_config(digits_data_dir, clip_export)
    config.prior.embed_dim = 48
    with pytest.raises(ValueError, match="embed_dim=48 but the CLIP export"):
        train_and_evaluate(config, str(tmp_path / "wide"))


def test_keyframes_condition_on_the_clip_image_embedding(digits_data_dir, clip_export, tmp_path):
    config = tiny_config(
        digits_data_dir,
        **{"unet.embedding_dim": 32, "train.num_steps": 2, "train.checkpoint_every": 2},
    )
    with pytest.raises(ConfigError, match="clip_from"):
        train_and_evaluate(config, str(tmp_path / "no_clip"))
    config.clip_from = clip_export
    state = train_and_evaluate(config, str(tmp_path / "run"))
    assert int(state.step) == 2
    assert (tmp_path / "run" / "samples" / "step_00000002.gif").exists()
    config.unet.embedding_dim = 16
    with pytest.raises(ValueError, match="embeds in 32"):
        train_and_evaluate(config, str(tmp_path / "wrong_width"))
