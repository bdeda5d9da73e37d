"""Conditioning on the frozen CLIP's image embedding of a clip's middle frame, shared by D^t and ↑F.

This is what lets both learn from unlabeled video: at training the embedding comes from a frame
of the clip itself; at sampling the prior supplies the same kind of embedding from text (or the
CLIP image tower from a given frame). The U-Net learns a null embedding for the examples whose
condition is dropped, which classifier-free guidance uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.diffusion import condition_keep_mask
from mav_jax.models.clip import unit
from mav_jax.models.frozen_clip import FrozenClip
from mav_jax.nn import UNetConfig
from mav_jax.parallel.sharding import BATCH_AXES


class ClipEmbeddingConditioned:
    """Mixin of the U-Net stages conditioned on a CLIP image embedding when
    `unet.embedding_dim > 0` (`clip_from` names the CLIP export)."""

    unet: UNetConfig
    clip_from: str
    condition_drop_rate: float

    def embedding_problems(self) -> list[str]:
        if self.unet.embedding_dim and not self.clip_from:
            return [
                "config.unet.embedding_dim > 0 conditions on CLIP image embeddings: set "
                "config.clip_from to a CLIP export, or embedding_dim=0 for a decoder without them"
            ]
        return []

    def conditioner(self, mesh: Mesh):
        """batch -> batch with 'embedding' (B, E): the unit-norm CLIP image embedding of each
        clip's middle frame (run before each train step, outside it)."""
        if not self.unet.embedding_dim:
            return lambda batch: batch
        clip = FrozenClip(self.clip_from, mesh, NamedSharding(mesh, PartitionSpec(BATCH_AXES)))
        if clip.embed_dim != self.unet.embedding_dim:
            raise ValueError(
                f"config.unet.embedding_dim={self.unet.embedding_dim} but the CLIP "
                f"export {self.clip_from} embeds in {clip.embed_dim}"
            )

        def condition(batch: dict) -> dict:
            frames = batch["video"]  # (B, F, H, W, 3)
            embedding = unit(clip.encode_image(frames[:, frames.shape[1] // 2]))
            return {**batch, "embedding": embedding}

        return condition

    def conditioning_shapes(self, batch_size: int) -> dict:
        """What `conditioner` adds, as shapes (for planning without a CLIP export)."""
        if not self.unet.embedding_dim:
            return {}
        return {
            "embedding": jax.ShapeDtypeStruct((batch_size, self.unet.embedding_dim), jnp.float32)
        }

    def training_embedding(
        self, model_config: UNetConfig, batch: dict, key: jax.Array, drop: bool = True
    ) -> dict:
        """The embedding and its keep-mask (dropped for `condition_drop_rate` of the batch, when
        `drop`; evaluation keeps every one) as keyword arguments of the U-Net being trained
        (`model_config`); empty if it is not conditioned."""
        if not model_config.embedding_dim:
            return {}
        batch_size = batch["video"].shape[0]
        rate = self.condition_drop_rate if drop else 0.0
        keep = condition_keep_mask(key, batch_size, rate)
        return {"embedding": batch["embedding"], "embedding_mask": keep}

    def sampling_embedding(
        self, embedding: jax.Array | None, guidance_scale: float | None
    ) -> tuple[dict, float | None]:
        """(U-Net keyword arguments, guidance scale) for sampling: the embedding (B, E) a
        conditioned U-Net needs, and no guidance for one that has nothing to guide."""
        if not self.unet.embedding_dim:
            return {}, None
        if embedding is None:
            raise ValueError(
                f"This {self.name} stage is conditioned on a CLIP image embedding "
                "(from the prior, or from a frame through the CLIP)."
            )
        return {"embedding": embedding}, guidance_scale
