"""The keyframe decoder D (images) and D^t (video): eps/v diffusion loss on clips, conditioned on
the timestep, fps and the CLIP image embedding (dropped to the null embedding for guidance).

Two phases, as in the paper: `image` trains the U-Net with temporal layers off on one-frame clips;
`video` builds the temporal layers and fps conditioning on top of the image weights.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.data.augment import CropFlipScale
from mav_jax.data.clips import ClipSampling, SampleClip
from mav_jax.diffusion import NoiseSchedule, diffusion_loss, make_schedule
from mav_jax.diffusion.frame_motion import (
    drift_velocity,
    steady_motion_guess,
    steady_velocity,
    translation_from_middle,
    velocity_shifts,
)
from mav_jax.nn import SpatioTemporalUNet, UNetConfig, unet_denoise_fn
from mav_jax.stages.base import UNetStage, present, resolution_problems
from mav_jax.stages.clip_conditioning import ClipEmbeddingConditioned
from mav_jax.stages.conditioned import frame_noise_problems, initial_noise, steady_motion_problems

PHASES = ("image", "video")
SOURCE_FPS = 24.0  # the embedded dataset's frame rate; fps conditioning = SOURCE_FPS / frame skip


def candidate_problems(count: int) -> list[str]:
    """Config problems of the number of keyframe videos drawn per embedding (a whole number >= 1)."""
    if isinstance(count, int) and count >= 1:
        return []
    return [
        f"config.diffusion.candidates is how many keyframe videos to draw per embedding, "
        f"keeping the one CLIP scores best: a whole number, at least 1 (1: no choice); "
        f"got {count}"
    ]


@dataclasses.dataclass(frozen=True)
class KeyframeStage(ClipEmbeddingConditioned, UNetStage):
    schedule: NoiseSchedule
    prediction: str = "eps"
    min_snr_gamma: float = 0.0  # 0: every timestep's loss counts equally
    condition_drop_rate: float = 0.1
    frame_noise_correlation: float = 0.0  # of the frames' initial noise at sampling (initial_noise)
    # Of the frames' noise in the training loss: the same mixed noise, so the network learns to
    # denoise what it is given at sampling (Ge et al. 2023). 0: independent frames.
    training_frame_noise_correlation: float = 0.0
    # Sampling: the shared part of the frames' noise drifts this many pixels a frame, each video
    # in a random direction (diffusion.frame_motion). 0: it stays in place.
    frame_noise_drift: float = 0.0
    # Training: the shared part of the frames' noise follows each clip's own translation, so the
    # network learns that it moves with the content (what a drift at sampling relies on).
    training_noise_follows_motion: bool = False
    # Sampling: > 0 samples the keyframes twice. The second pass starts from the first's middle
    # keyframe moved at the first's own velocity (frame_motion.steady_motion_guess; at the drift's
    # where the first left it still), noised, with this fraction of the sampler's steps left
    # (SDEdit), so the content keeps one shape and one speed across the keyframes. 0: one pass.
    steady_motion_strength: float = 0.0
    # Sampling: keyframe videos drawn per embedding, of which the cascade keeps the one whose
    # middle keyframe CLIP embeds closest to that embedding (Cascade.keyframe_candidates).
    # 1: no choice.
    candidates: int = 1
    unet: UNetConfig = UNetConfig()
    phase: str = "video"
    resolution: int = 32
    clips: ClipSampling = ClipSampling()
    split: str = "video"
    flip: bool = False
    clip_from: str = ""  # the CLIP export whose image embedding conditions the decoder
    sampler: str = "ddim"  # diffusion.get_sampler
    name: str = "keyframes"

    makes_videos: ClassVar[bool] = True
    sampling_overrides: ClassVar[tuple[tuple[str, str], ...]] = (
        ("frame_noise_correlation", "frame_noise_correlation"),
        ("frame_noise_drift", "frame_noise_drift"),
        ("steady_motion_strength", "steady_motion_strength"),
        ("keyframe_candidates", "candidates"),
        ("sampler", "sampler"),
    )

    @classmethod
    def from_config(cls, config) -> KeyframeStage:
        phase = config.phase
        video = phase == "video"
        unet = UNetConfig.from_dict(config.unet)
        # The image phase is the same U-Net with temporal layers and fps conditioning off.
        unet = unet.replace(temporal=video and unet.temporal, fps_conditioning=video)
        data = config.data
        clips = ClipSampling(
            num_frames=data.num_frames if video else 1,
            frame_skips=tuple(data.frame_skips) if video else (1,),
            fps_distribution=data.fps_distribution,
        )
        return cls(
            schedule=make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps),
            prediction=config.diffusion.prediction,
            condition_drop_rate=config.diffusion.condition_drop_rate,
            **present(
                config.diffusion,
                "min_snr_gamma",
                "frame_noise_correlation",
                "training_frame_noise_correlation",
                "frame_noise_drift",
                "training_noise_follows_motion",
                "steady_motion_strength",
                "candidates",
                "sampler",
            ),
            **present(config, "clip_from"),
            unet=unet,
            phase=phase,
            resolution=data.resolution,
            clips=clips,
            split=data.video_split if video else data.image_split,
            flip=data.flip,
        )

    @property
    def num_frames(self) -> int:
        return self.clips.num_frames

    def problems(self) -> list[str]:
        found = []
        if self.phase not in PHASES:
            found.append(f"config.phase must be one of {PHASES}, got '{self.phase}'")
        found += frame_noise_problems(training=self.training_frame_noise_correlation)
        if self.training_noise_follows_motion and not self.training_frame_noise_correlation:
            found.append(
                "config.diffusion.training_noise_follows_motion moves the noise the "
                "frames share, and they share none: set "
                "training_frame_noise_correlation > 0 too"
            )
        found += self.sampling_problems()
        return found + resolution_problems(self.resolution, self.unet) + self.embedding_problems()

    def sampling_problems(self) -> list[str]:
        return (
            frame_noise_problems(
                sampling=self.frame_noise_correlation, drift=self.frame_noise_drift
            )
            + steady_motion_problems(self.steady_motion_strength)
            + candidate_problems(self.candidates)
            + self.sampler_problems()
        )

    def operations(self) -> list:
        return [
            SampleClip(self.clips, decode_size=self.resolution),
            CropFlipScale(self.resolution, flip=self.flip),
        ]

    def loss(self, model: SpatioTemporalUNet, batch: dict, key: jax.Array, timesteps=None):
        """batch: 'video' (B, F, H, W, 3) in [-1, 1], 'fps' (B,), 'embedding' (B, E) if used."""
        cfg = model.config
        training = timesteps is None
        drop_key, diffusion_key, dropout_key, noise_key = jax.random.split(key, 4)
        cond = self.training_embedding(cfg, batch, drop_key, drop=training)
        if cfg.fps_conditioning:
            cond["fps"] = batch["fps"]

        def model_fn(x_t, t):
            return model(x_t, t, dropout_key=dropout_key, deterministic=not training, **cond)

        video = batch["video"]  # (B, F, H, W, 3)
        noise = None
        if self.training_frame_noise_correlation:
            shifts = translation_from_middle(video) if self.training_noise_follows_motion else None
            noise = initial_noise(
                noise_key, video.shape, self.training_frame_noise_correlation, shifts
            )
        return diffusion_loss(
            model_fn,
            video,
            diffusion_key,
            self.schedule,
            self.prediction,
            min_snr_gamma=self.min_snr_gamma,
            noise=noise,
            timesteps=timesteps,
        )

    def generate(
        self,
        graphdef: nnx.GraphDef,
        params: nnx.State,
        key: jax.Array,
        count: int,
        fps: float,
        num_steps: int,
        embedding: jax.Array | None = None,
        guidance_scale: float | None = None,
    ) -> jax.Array:
        """(count, F, H, W, 3) keyframes in [-1, 1] at `fps`, conditioned on unit-norm CLIP image
        `embedding` (count, E) when the decoder has one, with classifier-free guidance; sampled
        twice when `steady_motion_strength` > 0 (see that field)."""
        noise_key, sample_key = jax.random.split(key)
        shape = (count, self.num_frames, self.resolution, self.resolution, self.unet.in_channels)
        shifts = drift = None
        if self.frame_noise_drift and self.frame_noise_correlation:
            drift = drift_velocity(jax.random.fold_in(noise_key, 1), count, self.frame_noise_drift)
            shifts = velocity_shifts(drift, self.num_frames)  # (B, F, 2)
        x_T = initial_noise(
            noise_key, shape, self.frame_noise_correlation, shifts
        )  # (B, F, H, W, C)
        cond, guidance_scale = self.sampling_embedding(embedding, guidance_scale)
        if self.unet.fps_conditioning:
            cond["fps"] = jnp.full((count,), fps)
        sample = functools.partial(
            self.sample_fn(),
            unet_denoise_fn(graphdef),
            params,
            schedule=self.schedule,
            cond=cond,
            num_steps=num_steps,
            prediction=self.prediction,
            guidance_scale=guidance_scale,
        )
        video = sample(x_T, sample_key)  # (B, F, H, W, C)
        if not self.steady_motion_strength or self.num_frames < 2:
            return video
        # Second pass: from the first's middle keyframe moved at the first's velocity (at the
        # drift's where the first did not follow it), the shared noise moving along with it.
        velocity = steady_velocity(video, still_fallback=drift)  # (B, 2)
        shifts = (
            velocity_shifts(velocity, self.num_frames) if self.frame_noise_correlation else None
        )
        x_T = initial_noise(
            jax.random.fold_in(noise_key, 2), shape, self.frame_noise_correlation, shifts
        )
        return sample(
            x_T,
            jax.random.fold_in(sample_key, 1),
            init=steady_motion_guess(video, velocity),
            strength=self.steady_motion_strength,
        )

    def sample(
        self,
        graphdef: nnx.GraphDef,
        params: nnx.State,
        key: jax.Array,
        count: int,
        num_steps: int,
        batch: dict | None = None,
    ) -> tuple[jax.Array, float]:
        """Samples at the smallest frame skip (the highest frame rate); a conditioned decoder
        takes the embeddings of the training `batch`'s clips."""
        fps = SOURCE_FPS / min(self.clips.frame_skips)
        embedding = batch["embedding"][:count] if self.unet.embedding_dim else None
        return self.generate(graphdef, params, key, count, fps, num_steps, embedding), fps
