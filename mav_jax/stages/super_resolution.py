"""Super-resolution: SR^t_l (pseudo-3D, on video) and SR_h (temporal layers off, on images).

Both condition the shared U-Net on the bilinearly upsampled low-resolution input, noised to a
random augmentation level that is itself conditioning (the U-Net's noise-augmentation embedding),
so at sampling they tolerate the imperfect output of the stage below. SR_h starts every frame
from the same initial noise, as the paper does, so detail it invents does not flicker.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.data.augment import CropFlipScale
from mav_jax.data.clips import ClipSampling, SampleClip
from mav_jax.data.stage_inputs import LowResolution
from mav_jax.diffusion import (
    NoiseSchedule,
    diffusion_loss,
    make_schedule,
    q_sample,
)
from mav_jax.nn import SpatioTemporalUNet, UNetConfig, unet_denoise_fn
from mav_jax.stages.base import UNetStage, present, resolution_problems
from mav_jax.stages.conditioned import initial_noise, start_problems, upsample

SR_STAGES = ("sr_low", "sr_high")


@dataclasses.dataclass(frozen=True)
class SuperResolutionStage(UNetStage):
    schedule: NoiseSchedule
    unet: UNetConfig
    clips: ClipSampling
    # Output resolution / input resolution; field() keeps it required (StageDefaults has 1).
    factor: int = dataclasses.field()
    resolution: int  # output resolution
    crop: int = 0  # training window in native pixels (a patch of the target); 0: the whole frame
    max_aug_fraction: float = 0.2  # training noise augmentation: t_aug ~ U[0, fraction * T)
    sample_aug_fraction: float = 0.1  # the fixed augmentation level at sampling
    # Sampling: < 1 starts from the upsampled input, forward-noised, with this fraction of the
    # sampler's steps left to run (the samplers' `strength`); 1: from pure noise.
    start_strength: float = 1.0
    # Sampling: how much of each step's x0 prediction to move so that its box downsampling is the
    # low-res input (diffusion/low_res_consistency.py); 0: none, as the paper.
    low_res_consistency: float = 0.0
    prediction: str = "eps"
    min_snr_gamma: float = 0.0  # 0: every timestep's loss counts equally
    split: str = "video"
    flip: bool = False
    source_fps: float = 24.0
    sampler: str = "ddim"  # diffusion.get_sampler
    name: str = "sr_low"

    makes_videos: ClassVar[bool] = True
    sampling_overrides: ClassVar[tuple[tuple[str, str], ...]] = (
        ("start_strength", "start_strength"),
        ("low_res_consistency", "low_res_consistency"),
        ("sampler", "sampler"),
    )

    @classmethod
    def from_config(cls, config) -> SuperResolutionStage:
        name, data = config.stage, config.data
        video = name == "sr_low"
        unet = UNetConfig.from_dict(config.unet).replace(
            extra_in_channels=3,
            noise_aug_conditioning=True,
            temporal=video and config.unet.temporal,
            fps_conditioning=video,
        )
        return cls(
            schedule=make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps),
            unet=unet,
            clips=ClipSampling(
                num_frames=data.num_frames if video else 1,
                frame_skips=tuple(data.frame_skips) if video else (1,),
            ),
            factor=data.factor,
            resolution=data.resolution,
            **present(data, "crop"),
            max_aug_fraction=config.diffusion.max_aug_fraction,
            sample_aug_fraction=config.diffusion.sample_aug_fraction,
            prediction=config.diffusion.prediction,
            **present(
                config.diffusion,
                "start_strength",
                "low_res_consistency",
                "min_snr_gamma",
                "sampler",
            ),
            split=data.video_split if video else data.image_split,
            flip=data.flip,
            name=name,
        )

    @property
    def num_frames(self) -> int:
        return self.clips.num_frames

    @property
    def shared_noise(self) -> bool:
        return self.name == "sr_high"

    def problems(self) -> list[str]:
        found = []
        if self.factor < 2 or self.resolution % self.factor:
            found.append(
                f"config.data.factor={self.factor} must be >= 2 and divide "
                f"config.data.resolution={self.resolution}"
            )
        found += resolution_problems(self.resolution, self.unet)
        if self.crop:
            if not (self.crop <= self.resolution and self.crop % self.factor == 0):
                found.append(
                    f"config.data.crop={self.crop} must be at most config.data.resolution="
                    f"{self.resolution} and divisible by config.data.factor={self.factor}"
                )
            found += resolution_problems(self.crop, self.unet, field="crop")
        if self.unet.embedding_dim:
            found.append(
                "config.unet.embedding_dim must be 0: the SR stages are not text-conditioned"
            )
        return found + self.sampling_problems()

    def sampling_problems(self) -> list[str]:
        found = start_problems(self.start_strength) + self.sampler_problems()
        if not 0.0 <= self.low_res_consistency <= 1.0:
            found.append(
                f"config.diffusion.low_res_consistency is the fraction of the correction to "
                f"the low-res input applied: in [0, 1], got {self.low_res_consistency}"
            )
        return found

    def operations(self) -> list:
        """Native-pixel windows of the target (patches of `crop` when set: the U-Net has no
        attention, so what it learns on patches holds on whole frames) and their low-res input."""
        window = self.crop or self.resolution
        return [
            SampleClip(self.clips),
            CropFlipScale(window, flip=self.flip, fit="crop"),
            LowResolution(self.factor),
        ]

    def _conditioning(
        self, low_res: jax.Array, aug_t: jax.Array, key: jax.Array, fps, shared_noise: bool = False
    ) -> dict:
        """Upsampled, noise-augmented low-res input (B, F, H, W, 3) and its conditioning; H is
        `factor` x the input's (the output resolution, or the crop when training on patches)."""
        up = upsample(low_res, low_res.shape[2] * self.factor)
        noise = initial_noise(key, up.shape, float(shared_noise))
        cond = {
            "extra": q_sample(self.schedule, up, aug_t, noise),
            "noise_aug_level": aug_t.astype(jnp.float32),
        }
        if self.unet.fps_conditioning:
            cond["fps"] = fps
        return cond

    def loss(self, model: SpatioTemporalUNet, batch: dict, key: jax.Array, timesteps=None):
        """batch: 'video' (B, F, H, W, 3) target, 'low_res' (B, F, H/f, W/f, 3), 'fps' (B,)."""
        aug_key, noise_key, diffusion_key, dropout_key = jax.random.split(key, 4)
        batch_size = batch["video"].shape[0]
        top = max(int(self.max_aug_fraction * self.schedule.num_timesteps), 1)
        aug_t = jax.random.randint(aug_key, (batch_size,), 0, top)
        cond = self._conditioning(batch["low_res"], aug_t, noise_key, batch.get("fps"))

        def model_fn(x_t, t):
            deterministic = timesteps is not None
            return model(x_t, t, dropout_key=dropout_key, deterministic=deterministic, **cond)

        return diffusion_loss(
            model_fn,
            batch["video"],
            diffusion_key,
            self.schedule,
            self.prediction,
            min_snr_gamma=self.min_snr_gamma,
            timesteps=timesteps,
        )

    def upscale(
        self,
        graphdef: nnx.GraphDef,
        params: nnx.State,
        key: jax.Array,
        low_res: jax.Array,
        fps: jax.Array | None,
        num_steps: int,
    ) -> jax.Array:
        """(B, F, h, w, 3) -> (B, F, h * factor, w * factor, 3)."""
        noise_key, aug_key, sample_key = jax.random.split(key, 3)
        b, f = low_res.shape[:2]
        aug_t = jnp.full((b,), int(self.sample_aug_fraction * self.schedule.num_timesteps))
        cond = self._conditioning(low_res, aug_t, aug_key, fps, shared_noise=self.shared_noise)
        shape = (b, f, self.resolution, self.resolution, self.unet.in_channels)
        x_T = initial_noise(noise_key, shape, float(self.shared_noise))
        init = upsample(low_res, self.resolution) if self.start_strength < 1 else None
        held = (low_res, self.low_res_consistency) if self.low_res_consistency > 0 else None
        return self.sample_fn()(
            unet_denoise_fn(graphdef),
            params,
            x_T,
            sample_key,
            self.schedule,
            cond,
            num_steps=num_steps,
            prediction=self.prediction,
            init=init,
            strength=self.start_strength,
            low_res=held,
        )

    def sample(self, graphdef, params, key, count: int, num_steps: int, batch: dict):
        """Upscale the low-resolution versions of the first `count` training clips."""
        fps = batch["fps"][:count]
        videos = self.upscale(graphdef, params, key, batch["low_res"][:count], fps, num_steps)
        return videos, fps[0]
