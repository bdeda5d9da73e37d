"""Transformer pieces shared by the U-Net's attention blocks, CLIP's two towers and the prior.

Attention goes through `attention_kernels.attend` (`attention_impl`: XLA, cuDNN or splash, or the
fused kernel the backend has). Every parameter carries logical axis names, so the same rule table shards the
U-Net, CLIP and the prior.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.nn.attention_kernels import SPLASH_BLOCK, attend
from mav_jax.nn.block_scan import scan_blocks
from mav_jax.nn.layers import Dtype, axes_metadata, dense, layer_norm
from mav_jax.nn.remat import normalise_remat, rematted
from mav_jax.parallel import logical_axes as ax

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),  # OpenAI CLIP's
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation '{name}'; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


class MultiHeadAttention(nnx.Module):
    """Multi-head (self or cross) attention over (N, T, C) tokens (`attention_kernels.attend`)."""

    def __init__(
        self,
        features: int,
        num_heads: int,
        *,
        context_features: int | None = None,
        zero_init_output: bool = False,
        use_bias: bool = False,
        dtype: Dtype = jnp.float32,
        attention_impl: str = "auto",
        splash_min_tokens: int = SPLASH_BLOCK,
        rngs: nnx.Rngs,
    ):
        self.attention_impl = attention_impl
        self.splash_min_tokens = splash_min_tokens
        if features % num_heads:
            raise ValueError(f"features={features} is not divisible by num_heads={num_heads}.")
        head_dim = features // num_heads
        kv_features = context_features or features

        def proj(in_features: int) -> nnx.LinearGeneral:
            return nnx.LinearGeneral(
                in_features,
                (num_heads, head_dim),
                use_bias=use_bias,
                dtype=dtype,
                kernel_metadata=axes_metadata(ax.EMBED, ax.HEADS, ax.HEAD_DIM),
                bias_metadata=axes_metadata(ax.HEADS, ax.HEAD_DIM),
                rngs=rngs,
            )

        self.query = proj(features)
        self.key = proj(kv_features)
        self.value = proj(kv_features)
        self.out = nnx.LinearGeneral(
            (num_heads, head_dim),
            features,
            axis=(-2, -1),
            dtype=dtype,
            kernel_init=(
                nnx.initializers.zeros_init()
                if zero_init_output
                else nnx.initializers.lecun_normal()
            ),
            kernel_metadata=axes_metadata(ax.HEADS, ax.HEAD_DIM, ax.EMBED),
            bias_metadata=axes_metadata(ax.EMBED),
            rngs=rngs,
        )

    def __call__(
        self,
        x: jax.Array,
        context: jax.Array | None = None,
        *,
        mask: jax.Array | None = None,
        causal: bool = False,
    ) -> jax.Array:
        """x (N, T, C); mask (N, T) or (N, S): True where a key may be attended to."""
        kv = x if context is None else context.astype(x.dtype)
        q, k, v = self.query(x), self.key(kv), self.value(kv)  # (N, T, heads, head_dim)
        out = attend(
            q,
            k,
            v,
            mask=mask,
            causal=causal,
            impl=self.attention_impl,
            splash_min_tokens=self.splash_min_tokens,
        )
        return self.out(out)


class FeedForward(nnx.Module):
    """Token-wise MLP with 4x expansion."""

    def __init__(
        self,
        features: int,
        *,
        activation: str = "gelu_tanh",
        dtype: Dtype = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.activation = activation_fn(activation)
        self.hidden = dense(features, 4 * features, axes=(ax.EMBED, ax.MLP), dtype=dtype, rngs=rngs)
        self.out = dense(4 * features, features, axes=(ax.MLP, ax.EMBED), dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.activation(self.hidden(x)))


class TransformerBlock(nnx.Module):
    """Pre-LayerNorm block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(
        self,
        width: int,
        num_heads: int,
        *,
        activation: str = "gelu",
        dtype: Dtype = jnp.float32,
        attention_impl: str = "auto",
        rngs: nnx.Rngs,
    ):
        self.dtype = dtype
        self.attention_norm = layer_norm(width, rngs=rngs)
        self.attention = MultiHeadAttention(
            width, num_heads, use_bias=True, dtype=dtype, attention_impl=attention_impl, rngs=rngs
        )
        self.mlp_norm = layer_norm(width, rngs=rngs)
        self.mlp = FeedForward(width, activation=activation, dtype=dtype, rngs=rngs)

    def __call__(
        self, x: jax.Array, *, mask: jax.Array | None = None, causal: bool = False
    ) -> jax.Array:
        h = self.attention_norm(x).astype(self.dtype)
        x = x + self.attention(h, mask=mask, causal=causal).astype(x.dtype)
        return x + self.mlp(self.mlp_norm(x).astype(self.dtype)).astype(x.dtype)


class Transformer(nnx.Module):
    """A stack of `TransformerBlock`s. `remat` names what the backward pass keeps of each block
    (`nn.remat`); `scan_blocks` runs the stack as one `lax.scan` (one block to compile)."""

    def __init__(
        self,
        width: int,
        depth: int,
        num_heads: int,
        *,
        activation: str = "gelu",
        remat: bool | str = "none",
        scan_blocks: bool = False,
        dtype: Dtype = jnp.float32,
        attention_impl: str = "auto",
        rngs: nnx.Rngs,
    ):
        self.remat = normalise_remat(remat)
        self.scan_blocks = scan_blocks
        self.blocks = nnx.List(
            [
                TransformerBlock(
                    width,
                    num_heads,
                    activation=activation,
                    dtype=dtype,
                    attention_impl=attention_impl,
                    rngs=rngs,
                )
                for _ in range(depth)
            ]
        )

    def __call__(
        self, x: jax.Array, *, mask: jax.Array | None = None, causal: bool = False
    ) -> jax.Array:
        """x (N, T, width) -> (N, T, width)."""
        apply = lambda block, h, _: block(h, mask=mask, causal=causal)  # noqa: E731
        if self.scan_blocks and len(self.blocks) > 1:
            return scan_blocks(list(self.blocks), apply, x, None, self.remat)[0]
        for block in self.blocks:
            x = rematted(apply, self.remat)(block, x, None)
        return x
