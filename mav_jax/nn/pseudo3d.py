"""The two Make-A-Video building blocks: pseudo-3D convolution and pseudo-3D attention.

Both factorise space-time: a 2-D spatial layer on every frame, then a 1-D temporal layer over the
F frames at every location. The temporal half is initialised to the identity (Dirac conv kernel;
zero-initialised attention output on a residual path), so a video layer made from a trained image
layer starts out computing exactly the image layer, frame by frame. With temporal mixing off
(no temporal layers, `temporal=False` at call time, or F == 1) both are exactly the 2-D layer.

Video tensors are channels-last `(B, F, H, W, C)`. Under `parallel.use_mesh`, frames split over
the `context` mesh axis: the spatial layers need nothing from other devices; the temporal conv
keeps frames split (the compiler exchanges a halo of (k-1)/2 frames with each neighbour), and the
temporal attention reshards to whole frame sequences split by pixel (an all-to-all) and back.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.nn.attention_kernels import SPLASH_BLOCK
from mav_jax.nn.embeddings import frame_position_encoding
from mav_jax.nn.layers import Dtype, conv, dirac_init, layer_norm
from mav_jax.nn.transformer import FeedForward, MultiHeadAttention
from mav_jax.parallel import logical_axes as ax
from mav_jax.parallel.mesh_context import constrain

# Attribute names of every temporal sub-layer. The weight transplant and temporal-only training
# find the temporal parameters by these names (see `mav_jax.nn.unet.is_temporal_path`).
TEMPORAL_CONV = "temporal_conv"
TEMPORAL_NORM = "temporal_norm"
TEMPORAL_ATTENTION = "temporal_attention"

VIDEO_AXES = (ax.BATCH, ax.FRAMES, ax.HEIGHT, ax.WIDTH, None)  # (B, F, H, W, C)


def _frames_to_sequences(x: jax.Array) -> jax.Array:
    """(B, F, H, W, C) -> (B*H*W, F, C): one sequence over time per pixel."""
    b, f, h, w, c = x.shape
    return x.transpose(0, 2, 3, 1, 4).reshape(b * h * w, f, c)


def _sequences_to_frames(seq: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Inverse of `_frames_to_sequences` for a video of `shape` (B, F, H, W, C')."""
    b, f, h, w, c = shape
    return seq.reshape(b, h, w, f, c).transpose(0, 3, 1, 2, 4)


class Pseudo3DConv(nnx.Module):
    """k x k spatial conv on every frame, then a kt-tap temporal conv (identity at init) per pixel."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int = 3,
        temporal_kernel_size: int = 3,
        *,
        temporal: bool = True,
        dtype: Dtype = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.spatial_conv = conv(
            in_features, out_features, (kernel_size, kernel_size), dtype=dtype, rngs=rngs
        )
        self.temporal_conv = (
            conv(
                out_features,
                out_features,
                (temporal_kernel_size,),
                kernel_init=dirac_init,
                dtype=dtype,
                rngs=rngs,
            )
            if temporal
            else None
        )

    def __call__(self, x: jax.Array, *, temporal: bool = True) -> jax.Array:
        if x.ndim != 5:
            raise ValueError(f"Pseudo3DConv expects a video (B, F, H, W, C), got shape {x.shape}.")
        y = constrain(self.spatial_conv(x), VIDEO_AXES)  # (B, F, H, W, C'): (B, F) batch dims
        if self.temporal_conv is None or not temporal or x.shape[1] == 1:
            return y
        seq = constrain(_frames_to_sequences(y), (ax.BATCH, ax.FRAMES, None))  # (B*H*W, F, C')
        return constrain(_sequences_to_frames(self.temporal_conv(seq), y.shape), VIDEO_AXES)


class Pseudo3DAttention(nnx.Module):
    """Transformer block over a video: spatial self-attention per frame, optional cross-attention to
    conditioning tokens, a feed-forward layer, then temporal self-attention per location.

    Every sub-layer is pre-norm and residual. The temporal attention's output projection starts at
    zero, so at initialisation the block is its image counterpart applied frame by frame.
    """

    def __init__(
        self,
        features: int,
        num_heads: int,
        *,
        context_features: int | None = None,
        temporal: bool = True,
        dtype: Dtype = jnp.float32,
        attention_impl: str = "auto",
        splash_min_tokens: int = SPLASH_BLOCK,
        rngs: nnx.Rngs,
    ):
        self.dtype = dtype
        attention = functools.partial(
            MultiHeadAttention,
            dtype=dtype,
            attention_impl=attention_impl,
            splash_min_tokens=splash_min_tokens,
            rngs=rngs,
        )
        self.spatial_norm = layer_norm(features, rngs=rngs)
        self.spatial_attention = attention(features, num_heads)
        if context_features:
            self.cross_norm = layer_norm(features, rngs=rngs)
            self.cross_attention = attention(features, num_heads, context_features=context_features)
        else:
            self.cross_norm = self.cross_attention = None
        self.ff_norm = layer_norm(features, rngs=rngs)
        self.feed_forward = FeedForward(features, dtype=dtype, rngs=rngs)
        if temporal:
            self.temporal_norm = layer_norm(features, rngs=rngs)
            self.temporal_attention = attention(features, num_heads, zero_init_output=True)
        else:
            self.temporal_norm = self.temporal_attention = None

    def __call__(
        self, x: jax.Array, context: jax.Array | None = None, *, temporal: bool = True
    ) -> jax.Array:
        """x: (B, F, H, W, C); context: (B, S, D) tokens, shared by every frame of a clip."""
        if x.ndim != 5:
            raise ValueError(f"Pseudo3DAttention expects a video (B, F, H, W, C), got {x.shape}.")
        if context is not None and self.cross_attention is None:
            raise ValueError(
                "Context tokens given, but this block was built without cross-attention."
            )
        b, f, h, w, c = x.shape
        tokens = x.reshape(b * f, h * w, c)  # (B*F, H*W, C): one sequence per frame
        tokens = tokens + self._attend(self.spatial_attention, self.spatial_norm, tokens)
        if context is not None:
            frame_context = jnp.repeat(context, f, axis=0)  # (B*F, S, D)
            tokens = tokens + self._attend(
                self.cross_attention, self.cross_norm, tokens, frame_context
            )
        tokens = tokens + self.feed_forward(self.ff_norm(tokens).astype(self.dtype))
        x = tokens.reshape(b, f, h, w, c)
        if self.temporal_attention is None or not temporal or f == 1:
            return x
        x = constrain(x, VIDEO_AXES)
        seq = constrain(_frames_to_sequences(x), (ax.PIXELS, None, None))  # (B*H*W, F, C)
        normed = self.temporal_norm(seq) + frame_position_encoding(f, c)[None]
        update = self.temporal_attention(normed.astype(self.dtype))
        return x + constrain(_sequences_to_frames(update, x.shape), VIDEO_AXES)

    def _attend(self, attention, norm, tokens, context=None):
        return attention(norm(tokens).astype(self.dtype), context)
