"""Thin constructors for Flax NNX layers that carry logical axis names.

Every parameter gets `out_sharding` metadata (logical names from `mav_jax.parallel.logical_axes`)
with eager sharding off: the model is built mesh-agnostic, and `mav_jax.parallel.sharding` places
it on whatever mesh a run uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.parallel import logical_axes as ax

Dtype = Any


def axes_metadata(*names: str | None) -> dict[str, Any]:
    """Variable metadata naming each dimension's logical axis."""
    return {"out_sharding": tuple(names), "eager_sharding": False}


def dense(
    in_features: int,
    out_features: int,
    *,
    axes: tuple[str, str] = (ax.EMBED, ax.MLP),
    zero_init: bool = False,
    use_bias: bool = True,
    dtype: Dtype = jnp.float32,
    rngs: nnx.Rngs,
) -> nnx.Linear:
    kernel_init = nnx.initializers.zeros_init() if zero_init else nnx.initializers.lecun_normal()
    return nnx.Linear(
        in_features,
        out_features,
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=kernel_init,
        kernel_metadata=axes_metadata(*axes),
        bias_metadata=axes_metadata(axes[1]),
        rngs=rngs,
    )


def conv(
    in_features: int,
    out_features: int,
    kernel_size: Sequence[int],
    *,
    strides: int = 1,
    kernel_init: Any = None,
    dtype: Dtype = jnp.float32,
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """A conv over the trailing len(kernel_size) spatial dims; any leading dims are batch."""
    window = (ax.CONV_WINDOW,) * len(kernel_size)
    return nnx.Conv(
        in_features,
        out_features,
        tuple(kernel_size),
        strides=strides,
        padding="SAME",
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=kernel_init or nnx.initializers.lecun_normal(),
        kernel_metadata=axes_metadata(*window, ax.CONV_IN, ax.CONV_OUT),
        bias_metadata=axes_metadata(ax.CONV_OUT),
        rngs=rngs,
    )


class ChannelGroupNorm(nnx.GroupNorm):
    """nnx.GroupNorm (same parameters, same outputs) whose statistics come from per-channel moments.

    nnx.GroupNorm reshapes the activation to (..., groups, C / groups) to reduce it: at 320
    channels in 32 groups that puts 10 values on the TPU's 128-wide lane axis. Here the big tensor
    is reduced over its spatial axes with channels left minor, and only the (N, C) moments are
    grouped (docs/results.md has what it changes in the TPU compile). The variance is
    E[x^2] - E[x]^2, as nnx.GroupNorm's default `use_fast_variance`; settings this path does not
    cover (masks, explicit reduction axes, cross-device statistics, exact variance, an inferred
    dtype) go to nnx.GroupNorm itself.
    """

    def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
        unsupported = (
            mask is not None
            or self.reduction_axes is not None
            or self.axis_name is not None
            or not self.use_fast_variance
            or self.dtype is None
        )
        if unsupported:
            return super().__call__(x, mask=mask)
        x32 = x.astype(jnp.float32)  # (N, ..., C)
        spatial = tuple(range(1, x.ndim - 1))
        channel_mean = jnp.mean(x32, axis=spatial)  # (N, C)
        channel_square = jnp.mean(jnp.square(x32), axis=spatial)  # (N, C)
        n, c = channel_mean.shape
        grouped = (n, self.num_groups, c // self.num_groups)
        mean = jnp.mean(channel_mean.reshape(grouped), axis=-1)  # (N, G)
        square = jnp.mean(channel_square.reshape(grouped), axis=-1)  # (N, G)
        inv_std = jax.lax.rsqrt(jnp.maximum(square - jnp.square(mean), 0.0) + self.epsilon)
        mean = jnp.repeat(mean, self.group_size, axis=1)  # (N, C)
        inv_std = jnp.repeat(inv_std, self.group_size, axis=1)  # (N, C)
        if self.scale is not None:
            inv_std = inv_std * self.scale[...]
        shift = -mean * inv_std
        if self.bias is not None:
            shift = shift + self.bias[...]
        broadcast = (n,) + (1,) * len(spatial) + (c,)
        y = x32 * inv_std.reshape(broadcast) + shift.reshape(broadcast)
        return y.astype(self.dtype)


def group_norm(num_features: int, *, rngs: nnx.Rngs, max_groups: int = 32) -> ChannelGroupNorm:
    """GroupNorm computed in float32, with the largest group count <= max_groups dividing C.

    It normalises over everything but the first axis, so callers fold frames into the batch to
    keep statistics per frame (what makes images and one-frame videos the same thing).
    """
    groups = max(g for g in range(1, min(max_groups, num_features) + 1) if num_features % g == 0)
    return ChannelGroupNorm(
        num_features,
        num_groups=groups,
        epsilon=1e-5,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        scale_metadata=axes_metadata(ax.NORM),
        bias_metadata=axes_metadata(ax.NORM),
        rngs=rngs,
    )


def layer_norm(num_features: int, *, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm over the last axis, computed in float32."""
    return nnx.LayerNorm(
        num_features,
        epsilon=1e-5,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        scale_metadata=axes_metadata(ax.NORM),
        bias_metadata=axes_metadata(ax.NORM),
        rngs=rngs,
    )


def dirac_init(key: jax.Array, shape: Sequence[int], dtype: Dtype = jnp.float32) -> jax.Array:
    """Identity kernel for a 1-D conv `(taps, C, C)`: 1 at the centre tap's diagonal, 0 elsewhere."""
    del key
    taps, c_in, c_out = shape
    if c_in != c_out or taps % 2 == 0:
        raise ValueError(
            f"A Dirac (identity) kernel needs odd taps and C_in == C_out, got {shape}."
        )
    return jnp.zeros(shape, dtype).at[taps // 2].set(jnp.eye(c_in, dtype=dtype))
