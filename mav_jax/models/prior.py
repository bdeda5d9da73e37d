"""The prior P: an unCLIP-style diffusion prior (Ramesh et al. 2022, section 2.1).

A causal transformer reads, in order, the CLIP text encoder's per-token features, the CLIP text
embedding, the diffusion timestep, the noised CLIP image embedding, and a learned query; the
output at the query predicts the clean image embedding (x0). Classifier-free guidance: at training
the text (tokens and embedding) is dropped for a fraction of examples, replaced by learned nulls.

The image embedding is diffused in "scaled unit" space: unit-normalised, times sqrt(E), so its
components are about N(0, 1) like the noise (`to_diffusion_space` / `from_diffusion_space`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.config_dataclass import from_mapping
from mav_jax.models.clip import unit
from mav_jax.nn.attention_kernels import attention_impl_problems
from mav_jax.nn.embeddings import ScalarEmbedding
from mav_jax.nn.layers import axes_metadata, dense, layer_norm
from mav_jax.nn.remat import normalise_remat, remat_problems
from mav_jax.nn.transformer import Transformer
from mav_jax.parallel import logical_axes as ax

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
EXTRA_TOKENS = 4  # text embedding, timestep, noised image embedding, query


@dataclasses.dataclass(frozen=True)
class PriorConfig:
    embed_dim: int = 768  # CLIP's shared embedding width (E)
    text_width: int = 768  # CLIP text tower width: the per-token features' width
    context_length: int = 77
    width: int = 2048
    depth: int = 24
    num_heads: int = 32
    dtype: str = "float32"
    remat: str = "none"  # what backward keeps of each block: none, full, save_dots, offload
    scan_blocks: bool = False  # run the transformer's blocks as one lax.scan (compile time)
    attention_impl: str = "auto"  # auto, xla, splash (TPU) or cudnn (GPU): nn.attention_kernels

    def __post_init__(self):
        for problem in attention_impl_problems(self.attention_impl) + remat_problems(self.remat):
            raise ValueError(f"Invalid PriorConfig: {problem}.")
        object.__setattr__(self, "remat", normalise_remat(self.remat))  # True/False: older configs
        if self.width % self.num_heads:
            raise ValueError(
                f"Invalid PriorConfig: width {self.width} is not divisible by "
                f"num_heads {self.num_heads}."
            )
        if self.dtype not in _DTYPES:
            raise ValueError(f"Invalid PriorConfig: dtype must be one of {sorted(_DTYPES)}.")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PriorConfig:
        return from_mapping(cls, values, what="prior")


def to_diffusion_space(embedding: jax.Array) -> jax.Array:
    """(B, E) CLIP image embedding -> unit norm * sqrt(E)."""
    return unit(embedding) * jnp.sqrt(jnp.float32(embedding.shape[-1]))


def from_diffusion_space(x: jax.Array) -> jax.Array:
    """The prior's sample -> a unit-norm CLIP image embedding (what the decoder conditions on)."""
    return unit(x)


class DiffusionPrior(nnx.Module):
    def __init__(self, config: PriorConfig, *, rngs: nnx.Rngs):
        self.config = config
        width, dtype = config.width, _DTYPES[config.dtype]
        self.token_in = dense(
            config.text_width, width, axes=(ax.EMBED, ax.MLP), dtype=dtype, rngs=rngs
        )
        self.text_embedding_in = dense(
            config.embed_dim, width, axes=(ax.COND, ax.MLP), dtype=dtype, rngs=rngs
        )
        self.image_in = dense(
            config.embed_dim, width, axes=(ax.COND, ax.MLP), dtype=dtype, rngs=rngs
        )
        self.time_embedding = ScalarEmbedding(width, width, dtype=dtype, rngs=rngs)

        def learned(shape):
            return nnx.Param(
                0.02 * jax.random.normal(rngs.params(), shape),
                **axes_metadata(*([ax.TOKENS] * (len(shape) - 1)), ax.MLP),
            )

        self.query = learned((width,))
        self.null_text_embedding = learned((width,))
        self.positions = learned((config.context_length + EXTRA_TOKENS, width))
        self.transformer = Transformer(
            width,
            config.depth,
            config.num_heads,
            activation="gelu",
            remat=config.remat,
            scan_blocks=config.scan_blocks,
            dtype=dtype,
            attention_impl=config.attention_impl,
            rngs=rngs,
        )
        self.final_norm = layer_norm(width, rngs=rngs)
        self.out = dense(width, config.embed_dim, axes=(ax.MLP, ax.COND), rngs=rngs)

    def __call__(
        self,
        x_t: jax.Array,
        t: jax.Array,
        *,
        text_tokens: jax.Array,
        token_mask: jax.Array,
        text_embedding: jax.Array,
        embedding_mask: jax.Array | None = None,
    ) -> jax.Array:
        """x_t (B, E) noised image embedding, t (B,); text_tokens (B, L, text_width) CLIP per-token
        features, token_mask (B, L) True at real tokens; text_embedding (B, E); embedding_mask
        (B,) False where the text is dropped (guidance). Returns the predicted x0 (B, E)."""
        batch, length = token_mask.shape
        tokens = self.token_in(text_tokens)  # (B, L, W)
        text = self.text_embedding_in(unit(text_embedding).astype(tokens.dtype))  # (B, W)
        if embedding_mask is not None:
            keep = embedding_mask.astype(bool)
            tokens = jnp.where(keep[:, None, None], tokens, 0.0)
            # A dropped text keeps only its first position visible (so no row is fully masked).
            token_mask = jnp.where(keep[:, None], token_mask, jnp.arange(length) == 0)
            text = jnp.where(keep[:, None], text, self.null_text_embedding[...].astype(text.dtype))
        time = self.time_embedding(t).astype(tokens.dtype)
        image = self.image_in(x_t.astype(tokens.dtype))
        query = jnp.broadcast_to(self.query[...].astype(tokens.dtype), (batch, tokens.shape[-1]))
        sequence = jnp.concatenate(
            [tokens, jnp.stack([text, time, image, query], axis=1)], axis=1
        )  # (B, L + 4, W)
        sequence = sequence + self.positions[: length + EXTRA_TOKENS].astype(tokens.dtype)
        mask = jnp.concatenate([token_mask.astype(bool), jnp.ones((batch, EXTRA_TOKENS), bool)], 1)
        h = self.transformer(sequence, mask=mask, causal=True)
        return self.out(self.final_norm(h[:, -1]).astype(h.dtype)).astype(jnp.float32)


@functools.cache
def prior_denoise_fn(graphdef: nnx.GraphDef):
    """A pure `denoise_fn(params, x_t, t, cond)` for the samplers, one per graphdef (so jit
    caches one compilation)."""

    def denoise(params: nnx.State, x_t: jax.Array, t: jax.Array, cond: dict) -> jax.Array:
        return nnx.merge(graphdef, params)(x_t, t, **cond)

    return denoise
