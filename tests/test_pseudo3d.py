"""Pseudo-3D conv and attention: identity at init, exactly 2-D with temporal mixing off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mav_jax.nn import Pseudo3DAttention, Pseudo3DConv, transplant_spatial_params


def test_temporal_kernel_is_dirac_with_zero_bias():
    layer = Pseudo3DConv(6, 5, temporal_kernel_size=5, rngs=nnx.Rngs(0))
    kernel = np.asarray(layer.temporal_conv.kernel[...])  # (taps, C, C)
    expected = np.zeros((5, 5, 5), np.float32)
    expected[2] = np.eye(5)
    np.testing.assert_array_equal(kernel, expected)
    np.testing.assert_array_equal(np.asarray(layer.temporal_conv.bias[...]), 0.0)


@pytest.mark.parametrize("frames", [1, 4])
def test_conv_at_init_is_the_spatial_conv_on_every_frame(frames):
    layer = Pseudo3DConv(3, 8, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, frames, 6, 5, 3))  # (B, F, H, W, C)
    per_frame = jnp.stack([layer.spatial_conv(x[:, f]) for f in range(frames)], axis=1)
    np.testing.assert_allclose(layer(x), per_frame, atol=1e-5, rtol=1e-5)


def test_conv_without_temporal_layers_has_no_temporal_params_and_ignores_other_frames():
    layer = Pseudo3DConv(3, 4, temporal=False, rngs=nnx.Rngs(0))
    assert layer.temporal_conv is None
    x = jax.random.normal(jax.random.key(1), (1, 3, 4, 4, 3))
    y = layer(x)
    y2 = layer(x.at[:, 1:].set(0.0))
    np.testing.assert_array_equal(y[:, 0], y2[:, 0])


def test_trained_temporal_conv_mixes_frames_unless_switched_off():
    layer = Pseudo3DConv(3, 4, rngs=nnx.Rngs(0))
    layer.temporal_conv.kernel[...] = jax.random.normal(
        jax.random.key(5), layer.temporal_conv.kernel.shape
    )
    x = jax.random.normal(jax.random.key(1), (1, 3, 4, 4, 3))
    x_perturbed = x.at[:, 1].add(1.0)  # change frame 1 only
    assert not np.allclose(layer(x)[:, 0], layer(x_perturbed)[:, 0])
    np.testing.assert_array_equal(
        layer(x, temporal=False)[:, 0], layer(x_perturbed, temporal=False)[:, 0]
    )


def test_attention_at_init_equals_its_2d_twin_per_frame():
    video = Pseudo3DAttention(8, 2, context_features=6, temporal=True, rngs=nnx.Rngs(0))
    image = Pseudo3DAttention(8, 2, context_features=6, temporal=False, rngs=nnx.Rngs(1))
    transplant_spatial_params(nnx.state(image, nnx.Param), video)
    np.testing.assert_array_equal(np.asarray(video.temporal_attention.out.kernel[...]), 0.0)
    key_x, key_c = jax.random.split(jax.random.key(3))
    x = jax.random.normal(key_x, (2, 4, 3, 5, 8))
    context = jax.random.normal(key_c, (2, 3, 6))
    per_frame = jnp.concatenate([image(x[:, f : f + 1], context) for f in range(4)], axis=1)
    np.testing.assert_allclose(video(x, context), per_frame, atol=1e-5, rtol=1e-5)


def test_trained_temporal_attention_mixes_frames_and_tells_their_order():
    block = Pseudo3DAttention(8, 2, rngs=nnx.Rngs(0))
    out = block.temporal_attention.out
    out.kernel[...] = 0.3 * jax.random.normal(jax.random.key(4), out.kernel.shape)
    x = jax.random.normal(jax.random.key(1), (1, 4, 2, 2, 8))
    # A random change (a constant one would vanish in the LayerNorm) to frame 2 only.
    x_perturbed = x.at[:, 2].add(jax.random.normal(jax.random.key(2), x.shape[:1] + x.shape[2:]))
    y = block(x)
    assert not np.allclose(y[:, 0], block(x_perturbed)[:, 0], atol=1e-4)
    # Attention alone is permutation-equivariant; the frame position encoding breaks that.
    y_reversed_input = block(x[:, ::-1])
    assert not np.allclose(y_reversed_input[:, ::-1], y, atol=1e-4)
    np.testing.assert_array_equal(
        block(x, temporal=False)[:, 0], block(x_perturbed, temporal=False)[:, 0]
    )


def test_attention_rejects_context_it_was_not_built_for():
    block = Pseudo3DAttention(8, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="without cross-attention"):
        block(jnp.zeros((1, 2, 2, 2, 8)), jnp.zeros((1, 3, 8)))


def test_layers_reject_non_video_input():
    with pytest.raises(ValueError, match=r"\(B, F, H, W, C\)"):
        Pseudo3DConv(3, 4, rngs=nnx.Rngs(0))(jnp.zeros((2, 8, 8, 3)))
