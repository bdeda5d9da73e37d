"""The shared SpatioTemporalUNet: identity invariant, weight transplant, temporal mixing, bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_conditioning
from flax import nnx

from mav_jax.nn import (
    SpatioTemporalUNet,
    UNetConfig,
    new_parameter_paths,
    transplant_spatial_params,
    unet_denoise_fn,
)
from mav_jax.state_paths import flat_params


@pytest.fixture(scope="module")
def video_apply(video_unet):
    graphdef, state = nnx.split(video_unet)
    return jax.jit(unet_denoise_fn(graphdef)), state


@pytest.fixture(scope="module")
def image_apply(image_unet):
    graphdef, state = nnx.split(image_unet)
    return jax.jit(unet_denoise_fn(graphdef)), state


def _frames_as_images(x, cond, frames):
    """A clip batch -> a batch of one-frame videos, conditioning repeated per frame."""
    b = x.shape[0]
    images = x.reshape(b * frames, 1, *x.shape[2:])
    per_frame = {}
    for name, value in cond.items():
        if name == "extra":
            per_frame[name] = value.reshape(b * frames, 1, *value.shape[2:])
        elif name != "fps":  # the image model has no fps conditioning
            per_frame[name] = jnp.repeat(value, frames, axis=0)
    return images, per_frame


@pytest.mark.parametrize("frames,height,width", [(2, 8, 8), (5, 8, 16), (3, 16, 8)])
def test_video_unet_at_init_is_the_image_unet_per_frame(
    video_cfg, video_apply, image_apply, frames, height, width
):
    key_x, key_c = jax.random.split(jax.random.key(frames * 100 + height + width))
    b = 2
    x = jax.random.normal(key_x, (b, frames, height, width, 3))
    cond = make_conditioning(video_cfg, key_c, b, frames, height, width)
    t = cond.pop("timesteps")
    video_fn, video_state = video_apply
    image_fn, image_state = image_apply
    video_out = video_fn(video_state, x, t, cond)  # (B, F, H, W, 3)
    images, image_cond = _frames_as_images(x, cond, frames)
    image_out = image_fn(image_state, images, jnp.repeat(t, frames), image_cond)
    assert video_out.shape == (b, frames, height, width, 3)
    assert float(jnp.abs(video_out).mean()) > 0.1  # a real, non-trivial output
    np.testing.assert_allclose(video_out, image_out.reshape(video_out.shape), atol=2e-5, rtol=1e-5)


def _expected_new_paths(image_unet) -> set[tuple[str, ...]]:
    """Derived from the image model's structure: one temporal conv per Pseudo3DConv, one temporal
    norm + attention per attention block, and the fps embedding."""
    expected = set()
    for path in flat_params(image_unet):
        if path[-2:] == ("spatial_conv", "kernel"):
            expected |= {path[:-2] + ("temporal_conv", leaf) for leaf in ("kernel", "bias")}
        if path[-3:] == ("spatial_attention", "query", "kernel"):
            block = path[:-3]
            expected |= {block + ("temporal_norm", leaf) for leaf in ("scale", "bias")}
            attention = block + ("temporal_attention",)
            expected |= {attention + (proj, "kernel") for proj in ("query", "key", "value", "out")}
            expected.add(attention + ("out", "bias"))
    for layer in ("hidden", "out"):
        expected |= {("fps_embedding", layer, leaf) for leaf in ("kernel", "bias")}
    return expected


def test_transplant_adds_exactly_the_temporal_leaves_and_keeps_spatial_weights(
    image_unet, video_unet
):
    new = new_parameter_paths(image_unet, video_unet)
    assert new == _expected_new_paths(image_unet)
    assert len(new) > 30  # every conv and attention block of the tiny U-Net contributes
    video_params = flat_params(video_unet)
    for path, var in flat_params(image_unet).items():
        np.testing.assert_array_equal(video_params[path][...], var[...])


def test_transplant_refuses_an_image_model_of_another_shape(image_cfg, video_unet):
    def abstract_params(cfg):
        return nnx.state(
            nnx.eval_shape(lambda: SpatioTemporalUNet(cfg, rngs=nnx.Rngs(0))), nnx.Param
        )

    with pytest.raises(ValueError, match="Shape mismatch"):
        transplant_spatial_params(abstract_params(image_cfg.replace(base_channels=8)), video_unet)
    with pytest.raises(ValueError, match="absent from the video model"):
        transplant_spatial_params(abstract_params(image_cfg.replace(num_res_blocks=2)), video_unet)


def test_a_clip_conditioned_source_seeds_an_unconditioned_stage(image_cfg):
    """Keyframes conditioned on CLIP -> interpolation without: the conditioning layers are left
    out only when asked, and every other weight is copied."""
    assert image_cfg.embedding_dim > 0
    source = SpatioTemporalUNet(image_cfg, rngs=nnx.Rngs(1))
    target = SpatioTemporalUNet(image_cfg.replace(embedding_dim=0), rngs=nnx.Rngs(2))
    with pytest.raises(ValueError, match="absent from the video model"):
        transplant_spatial_params(nnx.state(source, nnx.Param), target)
    transplant_spatial_params(
        nnx.state(source, nnx.Param), target, drop_embedding_conditioning=True
    )
    source_params = flat_params(source)
    for path, var in flat_params(target).items():
        np.testing.assert_array_equal(var[...], source_params[path][...])


def _perturb_temporal(model: SpatioTemporalUNet) -> SpatioTemporalUNet:
    """A copy whose temporal convs and attention outputs are no longer the identity."""
    model = nnx.clone(model)
    key = jax.random.key(7)
    for path, var in nnx.iter_graph(model):
        names = [str(p) for p in path]
        if isinstance(var, nnx.Param) and (
            "temporal_conv" in names or names[-3:-1] == ["temporal_attention", "out"]
        ):
            key, sub = jax.random.split(key)
            var[...] = var[...] + 0.2 * jax.random.normal(sub, var.shape)
    return model


def test_trained_temporal_layers_make_a_frame_depend_on_other_frames(video_cfg, video_unet):
    graphdef, state = nnx.split(_perturb_temporal(video_unet))
    apply = jax.jit(unet_denoise_fn(graphdef))
    apply_no_time = jax.jit(lambda s, x, t, c: nnx.merge(graphdef, s)(x, t, temporal=False, **c))
    b, f, h, w = 1, 3, 8, 8
    key_x, key_c, key_p = jax.random.split(jax.random.key(11), 3)
    x = jax.random.normal(key_x, (b, f, h, w, 3))
    x_perturbed = x.at[:, 2].add(jax.random.normal(key_p, (b, h, w, 3)))  # frame 2 only
    cond = make_conditioning(video_cfg, key_c, b, f, h, w)
    t = cond.pop("timesteps")
    with_time = apply(state, x, t, cond), apply(state, x_perturbed, t, cond)
    assert float(jnp.abs(with_time[0][:, 0] - with_time[1][:, 0]).max()) > 1e-3
    without = apply_no_time(state, x, t, cond), apply_no_time(state, x_perturbed, t, cond)
    np.testing.assert_array_equal(without[0][:, 0], without[1][:, 0])


def test_learned_and_zero_null_embeddings_replace_dropped_conditions(video_cfg, video_apply):
    apply, state = video_apply
    b, f, h, w = 2, 2, 8, 8
    cond = make_conditioning(video_cfg, jax.random.key(3), b, f, h, w)
    t = cond.pop("timesteps")
    x = jax.random.normal(jax.random.key(4), (b, f, h, w, 3))
    mask = jnp.array([True, False])
    dropped = apply(state, x, t, dict(cond, embedding_mask=mask))
    null = state["null_embedding"][...]
    explicit = apply(state, x, t, dict(cond, embedding=cond["embedding"].at[1].set(null)))
    np.testing.assert_allclose(dropped, explicit, atol=1e-6)
    assert not np.allclose(dropped[1], apply(state, x, t, cond)[1], atol=1e-3)

    zero_null = SpatioTemporalUNet(
        dataclasses.replace(video_cfg, null_embedding="zero"), rngs=nnx.Rngs(0)
    )
    assert not hasattr(zero_null, "null_embedding") or zero_null.null_embedding is None
    cond0 = dict(cond, embedding_mask=mask)
    out = zero_null(x, t, **cond0)
    expect = zero_null(x, t, **dict(cond, embedding=cond["embedding"].at[1].set(0.0)))
    np.testing.assert_allclose(out, expect, atol=1e-6)


def test_bfloat16_compute_keeps_float32_params_and_tracks_float32(video_cfg, video_unet):
    graphdef, state = nnx.split(video_unet)
    bf16_graphdef, _ = nnx.split(
        nnx.eval_shape(
            lambda: SpatioTemporalUNet(video_cfg.replace(dtype="bfloat16"), rngs=nnx.Rngs(0))
        )
    )
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state))
    cond = make_conditioning(video_cfg, jax.random.key(5), 1, 2, 8, 8)
    t = cond.pop("timesteps")
    x = jax.random.normal(jax.random.key(6), (1, 2, 8, 8, 3))
    reference = jax.jit(unet_denoise_fn(graphdef))(state, x, t, cond)
    low = jax.jit(unet_denoise_fn(bf16_graphdef))(state, x, t, cond)
    assert low.dtype == jnp.float32
    rel = float(jnp.linalg.norm(low - reference) / jnp.linalg.norm(reference))
    assert rel < 0.05, rel


def test_remat_gives_the_same_gradients(video_cfg, video_unet):
    graphdef, state = nnx.split(video_unet)
    remat_graphdef, _ = nnx.split(
        nnx.eval_shape(lambda: SpatioTemporalUNet(video_cfg.replace(remat=True), rngs=nnx.Rngs(0)))
    )
    cond = make_conditioning(video_cfg, jax.random.key(8), 1, 2, 8, 8)
    t = cond.pop("timesteps")
    x = jax.random.normal(jax.random.key(9), (1, 2, 8, 8, 3))

    def grads(gd):
        loss = lambda s: jnp.mean(unet_denoise_fn(gd)(s, x, t, cond) ** 2)  # noqa: E731
        return jax.jit(jax.grad(loss))(state)

    plain, remat = grads(graphdef), grads(remat_graphdef)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)


def test_dropout_needs_a_key_and_changes_the_output():
    cfg = UNetConfig(
        base_channels=8,
        channel_mults=(1,),
        num_res_blocks=1,
        attention_levels=(),
        num_heads=1,
        dropout=0.5,
        temporal=False,
    )
    model = SpatioTemporalUNet(cfg, rngs=nnx.Rngs(0))
    x, t = jnp.ones((1, 1, 4, 4, 3)), jnp.ones((1,))
    with pytest.raises(ValueError, match="dropout_key"):
        model(x, t, deterministic=False)
    train = model(x, t, deterministic=False, dropout_key=jax.random.key(0))
    assert not np.allclose(train, model(x, t))


# ---- bad input: clear errors naming the expected shape ----------------------------------------


@pytest.mark.parametrize(
    "shape,match",
    [
        ((2, 8, 8, 3), r"\(B, F, H, W, 3\).*x\[:, None\]"),  # an image batch: wrong rank
        ((2, 2, 8, 8, 4), r"\(B, F, H, W, 3\)"),  # wrong channels
        ((2, 2, 7, 8, 3), r"divisible by 2"),  # H not divisible by the downsampling
    ],
)
def test_bad_input_shapes_are_rejected_with_the_expected_shape(video_cfg, video_unet, shape, match):
    cond = make_conditioning(video_cfg, jax.random.key(0), 2, 2, 8, 8)
    t = cond.pop("timesteps")
    with pytest.raises(ValueError, match=match):
        video_unet(jnp.zeros(shape), t, **cond)


def test_missing_or_misshapen_conditioning_is_named(video_cfg, video_unet):
    cond = make_conditioning(video_cfg, jax.random.key(0), 2, 2, 8, 8)
    t = cond.pop("timesteps")
    x = jnp.zeros((2, 2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"`fps` of shape \(2,\) is required"):
        video_unet(x, t, **{k: v for k, v in cond.items() if k != "fps"})
    with pytest.raises(ValueError, match=r"`extra` must have shape \(2, 2, 8, 8, 4\)"):
        video_unet(x, t, **dict(cond, extra=jnp.zeros((2, 2, 8, 8, 3))))


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="attention_levels"):
        UNetConfig(channel_mults=(1, 2), attention_levels=(2,))
    with pytest.raises(ValueError, match="Unknown U-Net config keys"):
        UNetConfig.from_dict({"base_channel": 32})
