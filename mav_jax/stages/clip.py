"""The `clip` stage: CLIP's text and image towers trained contrastively on image-text pairs.

This is how the tiny cascade gets its encoders (the paper uses OpenAI's pretrained CLIP; convert
those with `mav_jax.models.clip_convert` instead of training). The trained export is what the
prior and the keyframe decoder name as `clip_from`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
from flax import nnx

from mav_jax.data.clips import ClipSampling
from mav_jax.data.stage_inputs import SINGLE_FRAME
from mav_jax.models.clip import CLIP, ClipConfig, contrastive_loss
from mav_jax.models.tokenizer import ClipTokenizer
from mav_jax.stages.base import StageDefaults
from mav_jax.stages.captions import captioned_image_operations


def clip_config_with_vocab(values, tokenizer_spec: str) -> ClipConfig:
    """The ClipConfig of `values`, with vocab_size 0 meaning the tokenizer's own size."""
    config = ClipConfig.from_dict(values)
    if config.vocab_size == 0:
        vocab_size = ClipTokenizer.from_spec(tokenizer_spec).vocab_size
        config = dataclasses.replace(config, vocab_size=vocab_size)
    return config


@dataclasses.dataclass(frozen=True)
class ClipStage(StageDefaults):
    clip: ClipConfig
    tokenizer: str = "digits"  # ClipTokenizer.from_spec
    resolution: int = 32  # frames are cropped/scaled to this, then resized to clip.image_size
    split: str = "image_text"
    clips: ClipSampling = SINGLE_FRAME
    name: str = "clip"

    logged_metrics: ClassVar[tuple[str, ...]] = ("accuracy", "logit_scale")

    @classmethod
    def from_config(cls, config) -> ClipStage:
        clip = clip_config_with_vocab(config.clip, config.clip_tokenizer)
        data = config.get("data") or {}  # converted checkpoints have no training data
        return cls(
            clip=clip,
            tokenizer=config.clip_tokenizer,
            resolution=data.get("resolution", clip.image_size),
            split=data.get("split", "image_text"),
        )

    @property
    def num_frames(self) -> int:
        return 1

    def build_model(self, rngs: nnx.Rngs) -> CLIP:
        return CLIP(self.clip, rngs=rngs)

    def problems(self) -> list[str]:
        try:
            vocab = ClipTokenizer.from_spec(self.tokenizer).vocab_size
        except (FileNotFoundError, ValueError) as error:
            return [f"config.clip_tokenizer: {error}"]
        if vocab != self.clip.vocab_size:
            return [
                f"config.clip.vocab_size={self.clip.vocab_size} but the tokenizer "
                f"'{self.tokenizer}' has {vocab} tokens; set it to {vocab} (or 0)"
            ]
        return []

    def operations(self) -> list:
        return captioned_image_operations(self.resolution, self.tokenizer, self.clip.context_length)

    def loss(self, model: CLIP, batch: dict, key: jax.Array, timesteps=None):
        """batch: 'video' (B, 1, H, W, 3) in [-1, 1], 'tokens' (B, L): the captions. CLIP's loss
        has no randomness and no noise levels: `key` and `timesteps` are unused."""
        del key, timesteps
        image_emb = model.encode_image(batch["video"][:, 0])  # (B, E)
        text_emb = model.encode_text(batch["tokens"])  # (B, E)
        return contrastive_loss(image_emb, text_emb, model.logit_scale[...])
