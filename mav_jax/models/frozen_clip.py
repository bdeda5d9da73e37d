"""A trained (or converted) CLIP export, loaded once on a mesh and used frozen: it tokenizes
prompts and embeds text and images for the prior, the keyframe decoder, sampling and CLIPSIM.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from mav_jax import exports
from mav_jax.data import files
from mav_jax.models.clip import CLIP, ClipConfig
from mav_jax.models.tokenizer import ClipTokenizer
from mav_jax.parallel import abstract_model_params, rules_from_config

TOKENIZER_FILE = "tokenizer.json"  # written into converted exports


class FrozenClip:
    """`batch_sharding`, when given, is the sharding of every output (training batches, whose
    batch size divides the batch axes); otherwise XLA chooses."""

    def __init__(self, path: str, mesh: Mesh, batch_sharding: NamedSharding | None = None):
        if not path:
            raise ValueError(
                "No CLIP named: set config.clip_from to a CLIP export (train configs/clip.py and "
                "export it, or convert OpenAI/OpenCLIP weights with mav_jax.models.clip_convert)."
            )
        config = exports.read_config(path)
        if config.get("stage") != "clip":
            raise ValueError(f"{path} holds a '{config.get('stage')}' export, not a CLIP one.")
        self.path = path
        local = os.path.join(path, TOKENIZER_FILE)
        self.tokenizer = ClipTokenizer.from_spec(
            local if files.exists(local) else config.clip_tokenizer
        )
        self.config = ClipConfig.from_dict(config.clip)
        if self.config.vocab_size == 0:  # 0 in a config: the tokenizer's own size
            self.config = dataclasses.replace(self.config, vocab_size=self.tokenizer.vocab_size)
        clip_config = self.config
        graphdef, target = abstract_model_params(
            lambda: CLIP(clip_config, rngs=nnx.Rngs(0)), mesh, rules_from_config(config)
        )
        params = exports.restore_params(path, target)
        self.graphdef, self.params = graphdef, params
        self._text = jax.jit(
            lambda p, tokens: nnx.merge(graphdef, p).text(tokens), out_shardings=batch_sharding
        )
        self._image = jax.jit(
            lambda p, pixels: nnx.merge(graphdef, p).encode_image(pixels),
            out_shardings=batch_sharding,
        )

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def tokenize(self, prompts: list[str]) -> np.ndarray:
        """(N, context_length) int32; a prompt longer than the context is an error."""
        return self.tokenizer.encode(prompts, self.config.context_length)

    def encode_text(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(N, L) ids -> (embedding (N, E), per-token features (N, L, text_width))."""
        return self._text(self.params, tokens)

    def encode_image(self, pixels: jax.Array) -> jax.Array:
        """(N, H, W, 3) in [-1, 1] -> (N, E)."""
        return self._image(self.params, pixels)


def token_mask(tokens: jax.Array) -> jax.Array:
    """(N, L) ids -> (N, L) bool, True up to and including the end token (the highest id)."""
    end = jnp.argmax(tokens, axis=-1)
    return jnp.arange(tokens.shape[-1])[None, :] <= end[:, None]
