"""ChannelGroupNorm (statistics from per-channel moments, channels kept minor for the TPU) is
nnx.GroupNorm: same parameters, same outputs and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mav_jax.nn.layers import ChannelGroupNorm, group_norm


@pytest.mark.parametrize(
    "shape, dtype",
    [((3, 8, 8, 320), jnp.float32), ((2, 5, 64), jnp.float32), ((4, 6, 6, 96), jnp.bfloat16)],
)
def test_channel_group_norm_equals_flax_group_norm(shape, dtype):
    norm = group_norm(shape[-1], rngs=nnx.Rngs(0))
    assert isinstance(norm, ChannelGroupNorm)
    reference = nnx.GroupNorm(
        shape[-1], num_groups=norm.num_groups, epsilon=1e-5, dtype=jnp.float32, rngs=nnx.Rngs(0)
    )
    for name, key in (("scale", 1), ("bias", 2)):
        value = jax.random.normal(jax.random.key(key), (shape[-1],))
        getattr(norm, name)[...] = value
        getattr(reference, name)[...] = value
    shapes = jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(norm)))
    assert shapes == jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(reference)))
    x = (3 * jax.random.normal(jax.random.key(3), shape) + 1).astype(dtype)
    probe = jax.random.normal(jax.random.key(4), shape)

    def loss(module, x):
        return jnp.sum(module(x) * probe)

    out, ref_out = norm(x), reference(x)
    assert out.dtype == ref_out.dtype == jnp.float32
    np.testing.assert_allclose(out, ref_out, atol=2e-5)
    grads = nnx.grad(loss, argnums=(0, 1))(norm, x)
    ref_grads = nnx.grad(loss, argnums=(0, 1))(reference, x)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        np.testing.assert_allclose(
            np.asarray(got, np.float32), np.asarray(want, np.float32), rtol=2e-4, atol=2e-4
        )


@pytest.mark.parametrize(
    "settings", [{"use_fast_variance": False}, {"dtype": None}, {"reduction_axes": (1, -1)}]
)
def test_settings_outside_the_channel_path_behave_as_flax(settings):
    """What ChannelGroupNorm does not compute itself (exact variance, an inferred dtype, other
    reduction axes) gives nnx.GroupNorm's result, not a silently different one."""
    kwargs = {"num_groups": 4, "epsilon": 1e-5, "dtype": jnp.float32, **settings}
    norm = ChannelGroupNorm(8, rngs=nnx.Rngs(0), **kwargs)
    reference = nnx.GroupNorm(8, rngs=nnx.Rngs(0), **kwargs)
    x = (5 * jax.random.normal(jax.random.key(5), (2, 3, 4, 8)) + 100).astype(jnp.bfloat16)
    out, ref_out = norm(x), reference(x)
    assert out.dtype == ref_out.dtype
    np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(ref_out, np.float32))
