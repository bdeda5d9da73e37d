"""The keyframe decoder D (images) and D^t (video): eps/v diffusion loss on clips, conditioned on
the timestep, fps and the CLIP image embedding (dropped to the null embedding for guidance)."""

from __future__ import annotations

import dataclasses

import jax

from mav_jax.diffusion import NoiseSchedule, condition_keep_mask, diffusion_loss
from mav_jax.nn import SpatioTemporalUNet


@dataclasses.dataclass(frozen=True)
class KeyframeStage:
    schedule: NoiseSchedule
    prediction: str = "eps"
    condition_drop_rate: float = 0.1

    def loss(self, model: SpatioTemporalUNet, batch: dict, key: jax.Array):
        """batch: 'video' (B, F, H, W, 3) in [-1, 1], 'fps' (B,), 'embedding' (B, E) if used."""
        cfg = model.config
        drop_key, diffusion_key, dropout_key = jax.random.split(key, 3)
        cond = {}
        if cfg.fps_conditioning:
            cond["fps"] = batch["fps"]
        if cfg.embedding_dim:
            cond["embedding"] = batch["embedding"]
            cond["embedding_mask"] = condition_keep_mask(
                drop_key, batch["video"].shape[0], self.condition_drop_rate
            )

        def model_fn(x_t, t):
            return model(x_t, t, dropout_key=dropout_key, deterministic=False, **cond)

        return diffusion_loss(
            model_fn, batch["video"], diffusion_key, self.schedule, self.prediction
        )
