"""CLIP (Radford et al. 2021) in Flax NNX: a causal text transformer and a ViT image tower whose
projected outputs share one embedding space, trained with the symmetric contrastive loss.

The layout follows OpenAI/OpenCLIP (pre-LN blocks, class token, `ln_post` on it, bias-free
projections, pooling at the end-of-text token), so their checkpoints convert one to one
(`mav_jax.models.clip_convert`). Pixels enter in the cascade's [-1, 1] range at any size; the
image tower resizes them and applies CLIP's own normalisation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mav_jax.config_dataclass import from_mapping
from mav_jax.nn.attention_kernels import attention_impl_problems
from mav_jax.nn.layers import axes_metadata, layer_norm
from mav_jax.nn.remat import normalise_remat, remat_problems
from mav_jax.nn.transformer import ACTIVATIONS, Transformer
from mav_jax.parallel import logical_axes as ax

# CLIP's pixel normalisation (ImageNet-like statistics of its training set), on [0, 1] pixels.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_LOGIT_SCALE = math.log(100.0)


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    embed_dim: int = 512  # the shared embedding space
    image_size: int = 224
    patch_size: int = 32
    vision_width: int = 768
    vision_layers: int = 12
    vision_heads: int = 12
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_layers: int = 12
    text_heads: int = 8
    activation: str = "quick_gelu"  # OpenAI's; OpenCLIP's LAION models use "gelu"
    remat: str = "none"  # what backward keeps of each block: none, full, save_dots, offload
    scan_blocks: bool = False  # run the transformer's blocks as one lax.scan (compile time)
    attention_impl: str = "auto"  # auto, xla, splash (TPU) or cudnn (GPU): nn.attention_kernels

    def __post_init__(self):
        problems = attention_impl_problems(self.attention_impl) + remat_problems(self.remat)
        object.__setattr__(self, "remat", normalise_remat(self.remat))  # True/False: older configs
        if self.image_size % self.patch_size:
            problems.append(
                f"image_size {self.image_size} must be divisible by patch_size {self.patch_size}"
            )
        if self.vision_width % self.vision_heads or self.text_width % self.text_heads:
            problems.append("vision_width/text_width must be divisible by their head counts")
        if self.activation not in ACTIVATIONS:
            problems.append(f"activation must be one of {sorted(ACTIVATIONS)}")
        if problems:
            raise ValueError("Invalid ClipConfig: " + "; ".join(problems) + ".")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClipConfig:
        return from_mapping(cls, values, what="CLIP")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def _param(key: jax.Array, shape: tuple[int, ...], std: float, *axes: str | None) -> nnx.Param:
    return nnx.Param(std * jax.random.normal(key, shape), **axes_metadata(*axes))


class TextEncoder(nnx.Module):
    """Token ids (N, L) -> (pooled embedding (N, E), per-token features (N, L, width))."""

    def __init__(self, config: ClipConfig, *, rngs: nnx.Rngs):
        width = config.text_width
        self.token_embedding = nnx.Embed(
            config.vocab_size,
            width,
            embedding_init=nnx.initializers.normal(0.02),
            embedding_metadata=axes_metadata(ax.VOCAB, ax.EMBED),
            rngs=rngs,
        )
        self.positional_embedding = _param(
            rngs.params(), (config.context_length, width), 0.01, ax.TOKENS, ax.EMBED
        )
        self.transformer = Transformer(
            width,
            config.text_layers,
            config.text_heads,
            activation=config.activation,
            remat=config.remat,
            scan_blocks=config.scan_blocks,
            attention_impl=config.attention_impl,
            rngs=rngs,
        )
        self.final_norm = layer_norm(width, rngs=rngs)
        self.projection = _param(
            rngs.params(), (width, config.embed_dim), width**-0.5, ax.EMBED, ax.COND
        )

    def __call__(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = self.token_embedding(tokens) + self.positional_embedding[: tokens.shape[1]]
        x = self.final_norm(self.transformer(x, causal=True))  # (N, L, width)
        # The end-of-text token has the highest id in CLIP's vocabulary layout (see tokenizer.py),
        # and causal attention has let it read the whole text.
        end = jnp.argmax(tokens, axis=-1)  # (N,)
        pooled = jnp.take_along_axis(x, end[:, None, None], axis=1)[:, 0]  # (N, width)
        return pooled @ self.projection, x


class ImageEncoder(nnx.Module):
    """Images (N, H, W, 3) already at image_size and CLIP-normalised -> (N, E)."""

    def __init__(self, config: ClipConfig, *, rngs: nnx.Rngs):
        width, patch = config.vision_width, config.patch_size
        self.patch_embedding = nnx.Conv(
            3,
            width,
            (patch, patch),
            strides=patch,
            padding="VALID",
            use_bias=False,
            kernel_metadata=axes_metadata(ax.CONV_WINDOW, ax.CONV_WINDOW, ax.CONV_IN, ax.CONV_OUT),
            rngs=rngs,
        )
        scale = width**-0.5
        self.class_embedding = _param(rngs.params(), (width,), scale, ax.EMBED)
        self.positional_embedding = _param(
            rngs.params(), (config.num_patches + 1, width), scale, ax.TOKENS, ax.EMBED
        )
        self.pre_norm = layer_norm(width, rngs=rngs)
        self.transformer = Transformer(
            width,
            config.vision_layers,
            config.vision_heads,
            activation=config.activation,
            remat=config.remat,
            scan_blocks=config.scan_blocks,
            attention_impl=config.attention_impl,
            rngs=rngs,
        )
        self.post_norm = layer_norm(width, rngs=rngs)
        self.projection = _param(rngs.params(), (width, config.embed_dim), scale, ax.EMBED, ax.COND)

    def __call__(self, images: jax.Array) -> jax.Array:
        patches = self.patch_embedding(images)  # (N, h, w, width)
        n, h, w, width = patches.shape
        tokens = patches.reshape(n, h * w, width)
        cls = jnp.broadcast_to(self.class_embedding[...], (n, 1, width))
        x = jnp.concatenate([cls, tokens], axis=1) + self.positional_embedding[...]
        x = self.transformer(self.pre_norm(x))  # (N, 1 + h * w, width)
        return self.post_norm(x[:, 0]) @ self.projection


class CLIP(nnx.Module):
    def __init__(self, config: ClipConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.text = TextEncoder(config, rngs=rngs)
        self.image = ImageEncoder(config, rngs=rngs)
        self.logit_scale = nnx.Param(jnp.asarray(math.log(1 / 0.07)), **axes_metadata())

    def normalize_pixels(self, pixels: jax.Array) -> jax.Array:
        """(N, H, W, 3) in [-1, 1] -> image_size x image_size with CLIP's mean/std."""
        size = self.config.image_size
        if pixels.shape[1:3] != (size, size):
            pixels = jax.image.resize(pixels, (pixels.shape[0], size, size, 3), "bilinear")
        mean, std = jnp.asarray(CLIP_MEAN), jnp.asarray(CLIP_STD)
        return ((pixels + 1.0) / 2.0 - mean) / std

    def encode_image(self, pixels: jax.Array) -> jax.Array:
        """(N, H, W, 3) pixels in [-1, 1] -> (N, E) image embeddings (not unit-normalised)."""
        return self.image(self.normalize_pixels(pixels))

    def encode_text(self, tokens: jax.Array) -> jax.Array:
        """(N, L) token ids -> (N, E) text embeddings (not unit-normalised)."""
        return self.text(tokens)[0]


def unit(x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True).clip(1e-6)


def contrastive_loss(
    image_emb: jax.Array, text_emb: jax.Array, logit_scale: jax.Array
) -> tuple[jax.Array, dict]:
    """CLIP's symmetric InfoNCE over the (N, N) cosine similarities of a global batch; also the
    fraction of images whose own caption scores highest."""
    scale = jnp.exp(jnp.minimum(logit_scale, MAX_LOGIT_SCALE))
    logits = scale * unit(image_emb) @ unit(text_emb).T  # (N images, N texts)
    labels = jnp.arange(logits.shape[0])
    loss = 0.5 * (
        optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        + optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()
    )
    accuracy = jnp.mean(jnp.argmax(logits, axis=1) == labels)
    return loss, {"accuracy": accuracy, "logit_scale": scale}


def cosine_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """Row-wise cosine similarity of (N, E) and (N, E) -> (N,)."""
    return jnp.sum(unit(a) * unit(b), axis=-1)
