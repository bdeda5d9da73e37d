"""The `prior` stage: P, which turns a caption into a CLIP image embedding (x0-prediction
diffusion over the embedding), trained on image-text pairs with a frozen CLIP (`clip_from`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.data.clips import ClipSampling
from mav_jax.data.stage_inputs import SINGLE_FRAME
from mav_jax.diffusion import (
    NoiseSchedule,
    Sampler,
    condition_keep_mask,
    ddim_sample,
    diffusion_loss,
    make_schedule,
)
from mav_jax.models.clip import cosine_similarity
from mav_jax.models.frozen_clip import FrozenClip, token_mask
from mav_jax.models.prior import (
    DiffusionPrior,
    PriorConfig,
    from_diffusion_space,
    prior_denoise_fn,
    to_diffusion_space,
)
from mav_jax.parallel.sharding import BATCH_AXES
from mav_jax.stages.base import StageDefaults, present
from mav_jax.stages.captions import captioned_image_operations


@dataclasses.dataclass(frozen=True)
class PriorStage(StageDefaults):
    prior: PriorConfig
    schedule: NoiseSchedule
    clip_from: str = ""
    tokenizer: str = "digits"
    condition_drop_rate: float = 0.1
    resolution: int = 32
    split: str = "image_text"
    clips: ClipSampling = SINGLE_FRAME
    sampler: str = "ddim"  # diffusion.get_sampler
    name: str = "prior"

    logged_metrics: ClassVar[tuple[str, ...]] = ("cosine",)
    sampling_overrides: ClassVar[tuple[tuple[str, str], ...]] = (("sampler", "sampler"),)

    @classmethod
    def from_config(cls, config) -> PriorStage:
        return cls(
            prior=PriorConfig.from_dict(config.prior),
            schedule=make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps),
            clip_from=config.clip_from,
            tokenizer=config.clip_tokenizer,
            condition_drop_rate=config.diffusion.condition_drop_rate,
            **present(config.diffusion, "sampler"),
            resolution=config.data.resolution,
            split=config.data.split,
        )

    @property
    def num_frames(self) -> int:
        return 1

    def build_model(self, rngs: nnx.Rngs) -> DiffusionPrior:
        return DiffusionPrior(self.prior, rngs=rngs)

    def sampling_problems(self) -> list[str]:
        return self.sampler_problems()

    def problems(self) -> list[str]:
        found = self.sampling_problems()
        if not self.clip_from:
            found.append(
                "config.clip_from must name a CLIP export (train configs/clip.py and export "
                "it, or convert pretrained weights with mav_jax.models.clip_convert)"
            )
        return found

    def operations(self) -> list:
        return captioned_image_operations(
            self.resolution, self.tokenizer, self.prior.context_length
        )

    def conditioner(self, mesh: Mesh):
        """batch -> batch with the frozen CLIP's 'text_tokens', 'text_embedding' and the target
        'image_embedding' added (run before each train step, outside it)."""
        clip = FrozenClip(self.clip_from, mesh, NamedSharding(mesh, PartitionSpec(BATCH_AXES)))
        mismatch = clip_problems(clip, self.prior)
        if mismatch:
            raise ValueError("; ".join(mismatch))

        def condition(batch: dict) -> dict:
            text_embedding, text_tokens = clip.encode_text(batch["tokens"])
            image_embedding = clip.encode_image(batch["video"][:, 0])
            return {
                **batch,
                "text_tokens": text_tokens,
                "text_embedding": text_embedding,
                "image_embedding": image_embedding,
            }

        return condition

    def conditioning_shapes(self, batch_size: int) -> dict:
        """What `conditioner` adds, as shapes (for planning without a CLIP export)."""
        prior, f32 = self.prior, jnp.float32
        return {
            "text_tokens": jax.ShapeDtypeStruct(
                (batch_size, prior.context_length, prior.text_width), f32
            ),
            "text_embedding": jax.ShapeDtypeStruct((batch_size, prior.embed_dim), f32),
            "image_embedding": jax.ShapeDtypeStruct((batch_size, prior.embed_dim), f32),
        }

    def loss(self, model: DiffusionPrior, batch: dict, key: jax.Array, timesteps=None):
        """batch: 'tokens' (B, L), 'text_tokens' (B, L, Tw), 'text_embedding' and
        'image_embedding' (B, E) from the frozen CLIP."""
        drop_key, diffusion_key = jax.random.split(key)
        cond = {
            "text_tokens": batch["text_tokens"],
            "token_mask": token_mask(batch["tokens"]),
            "text_embedding": batch["text_embedding"],
            "embedding_mask": condition_keep_mask(
                drop_key,
                batch["tokens"].shape[0],
                self.condition_drop_rate if timesteps is None else 0.0,
            ),
        }
        target = to_diffusion_space(batch["image_embedding"])
        loss, aux = diffusion_loss(
            lambda x_t, t: model(x_t, t, **cond),
            target,
            diffusion_key,
            self.schedule,
            "x0",
            timesteps=timesteps,
        )
        # How close the predicted embedding (x0) is to the true one (1 is perfect), over the batch.
        aux["cosine"] = jnp.mean(cosine_similarity(aux["output"], target))
        return loss, aux


def clip_problems(clip: FrozenClip, prior: PriorConfig) -> list[str]:
    """The prior's input widths must be the CLIP's."""
    found = []
    for field, value in (
        ("embed_dim", clip.config.embed_dim),
        ("text_width", clip.config.text_width),
        ("context_length", clip.config.context_length),
    ):
        if getattr(prior, field) != value:
            found.append(
                f"config.prior.{field}={getattr(prior, field)} but the CLIP export "
                f"{clip.path} has {value}"
            )
    return found


def sample_image_embeddings(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    key: jax.Array,
    schedule: NoiseSchedule,
    text_tokens: jax.Array,
    tokens: jax.Array,
    text_embedding: jax.Array,
    *,
    num_steps: int,
    guidance_scale: float | None,
    sampler: Sampler = ddim_sample,
) -> jax.Array:
    """Captions (as the frozen CLIP's outputs) -> (B, E) unit-norm CLIP image embeddings."""
    cond = {
        "text_tokens": text_tokens,
        "token_mask": token_mask(tokens),
        "text_embedding": text_embedding,
    }
    noise_key, sample_key = jax.random.split(key)
    x_T = jax.random.normal(noise_key, text_embedding.shape, jnp.float32)
    x0 = sampler(
        prior_denoise_fn(graphdef),
        params,
        x_T,
        sample_key,
        schedule,
        cond,
        num_steps=num_steps,
        prediction="x0",
        clip_x0=False,
        guidance_scale=guidance_scale,
    )
    return from_diffusion_space(x0)
