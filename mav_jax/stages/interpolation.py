"""Frame interpolation ↑F: the shared U-Net with 4 extra input channels (the given frames, masked,
and the mask), conditioned on fps and, as D^t is, on the CLIP image embedding of the clip's middle
frame; trained to fill in, extend or animate clips.

With keyframe skip k, K keyframes become (K - 1) * k + 1 frames (16 -> 76 at k = 5, as in the
paper). The loss covers only the frames to generate; at sampling the given frames are copied
into the output unchanged, and at every step the sampler holds them at their forward-noised values
(`hold_given_frames`), as training shows them to the network. The frames to generate can start
part-way down the sampler's schedule from the given frames' blend (`start_strength` < 1), linear or
moved along the translation between them (`start_follows_motion`; past the last given frame, on at
their velocity, and a single given frame at `animation_speed` in a random direction).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.data.augment import CropFlipScale
from mav_jax.data.clips import ClipSampling, SampleClip
from mav_jax.diffusion import NoiseSchedule, diffusion_loss, make_schedule
from mav_jax.diffusion.frame_motion import drift_velocity, shift, translation
from mav_jax.nn import SpatioTemporalUNet, UNetConfig, unet_denoise_fn
from mav_jax.stages.base import UNetStage, present, resolution_problems
from mav_jax.stages.clip_conditioning import ClipEmbeddingConditioned
from mav_jax.stages.conditioned import frame_noise_problems, initial_noise, start_problems
from mav_jax.stages.frame_modes import RandomFrameMask

MASK_CHANNELS = 4  # RGB of the given frames (zero elsewhere) + the mask


def blend_given(
    video: jax.Array,
    mask: jax.Array,
    follow_motion: bool = False,
    still_velocity: jax.Array | None = None,
) -> jax.Array:
    """(B, F, H, W, C), (B, F) -> (B, F, H, W, C): every frame not given is the linear blend of
    the given frames on either side of it (a copy of the one given frame where only one side has
    one: extrapolation, animation); given frames are unchanged. A row without a given frame is 0.

    `follow_motion`: each side is first moved along the translation between the two given frames
    (`translation`), by as much of it as the frame lies between them, so content that moves is
    carried across rather than faded out at one place and in at the next. A frame after the last
    given one is the last given frame moved on at the velocity between the two given frames
    before it (extrapolation), or, where only one frame is given (animation), at `still_velocity`
    (B, 2) pixels a frame (none given: it stays a copy)."""
    frames = video.shape[1]
    index = jnp.arange(frames)
    given = mask > 0  # (B, F)
    last_given = jax.lax.cummax(jnp.where(given, index, -1), axis=1)  # last given at or before
    after = jax.lax.cummin(jnp.where(given, index, frames), axis=1, reverse=True)  # first at/after
    has_before, has_after = last_given >= 0, after < frames
    before = jnp.where(has_before, last_given, after)
    after = jnp.where(has_after, after, before)
    span = jnp.maximum(after - before, 1)
    w = jnp.where(after > before, (index - before) / span, 0.0)  # (B, F): weight of `after`
    pick = lambda i: jnp.take_along_axis(
        video, jnp.clip(i, 0, frames - 1)[:, :, None, None, None], axis=1
    )  # noqa: E731
    first, last = pick(before), pick(after)  # (B, F, H, W, C): the given frames either side
    if follow_motion:
        motion = translation(first, last).astype(jnp.float32)  # (B, F, 2): first -> last
        offset_first = w[..., None] * motion
        # Past the last given frame: onwards at the velocity of the two given frames before it.
        earlier = jnp.pad(
            last_given[:, :-1], ((0, 0), (1, 0)), constant_values=-1
        )  # last given < i
        second = jnp.take_along_axis(
            earlier, jnp.clip(before, 0, frames - 1), axis=1
        )  # given < before
        gap = jnp.maximum(before - second, 1)[..., None]
        velocity = translation(pick(second), first).astype(jnp.float32) / gap  # (B, F, 2)
        fallback = (
            jnp.zeros_like(velocity)
            if still_velocity is None
            else jnp.broadcast_to(still_velocity[:, None, :].astype(jnp.float32), velocity.shape)
        )
        velocity = jnp.where((second >= 0)[..., None], velocity, fallback)
        ahead = (has_before & ~has_after)[..., None]
        offset_first = jnp.where(ahead, velocity * (index - before)[..., None], offset_first)
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731  (B, F, ...) -> (B * F, ...)
        first = shift(flat(first), flat(offset_first)).reshape(first.shape)
        last = shift(flat(last), flat((w[..., None] - 1.0) * motion)).reshape(last.shape)
    blended = (1.0 - w)[:, :, None, None, None] * first + w[:, :, None, None, None] * last
    return jnp.where((has_before | has_after)[:, :, None, None, None], blended, 0.0).astype(
        video.dtype
    )


def masked_inputs(video: jax.Array, mask: jax.Array) -> jax.Array:
    """(B, F, H, W, 3), (B, F) -> (B, F, H, W, 4): the given frames and the mask as channels."""
    m = jnp.broadcast_to(mask[:, :, None, None, None].astype(video.dtype), (*video.shape[:4], 1))
    return jnp.concatenate([video * m, m], axis=-1)


@dataclasses.dataclass(frozen=True)
class InterpolationStage(ClipEmbeddingConditioned, UNetStage):
    schedule: NoiseSchedule
    unet: UNetConfig
    clips: ClipSampling
    keyframe_skip: int
    mode_weights: tuple[float, float, float] = (0.7, 0.15, 0.15)
    clip_from: str = ""  # the CLIP export whose image embedding conditions ↑F (embedding_dim > 0)
    condition_drop_rate: float = 0.1
    frame_noise_correlation: float = 0.0  # of the frames' initial noise at sampling (initial_noise)
    hold_given_frames: bool = True  # the samplers' `known`: the given frames' x_t at every step
    # Sampling: < 1 starts the frames to generate from the given frames' blend (`blend_given`),
    # forward-noised, with this fraction of the sampler's steps left to run; 1: from pure noise.
    start_strength: float = 1.0
    # ... and that blend moves each side along the given frames' translation (`follow_motion`).
    start_follows_motion: bool = False
    # ... and, with it, moves a single given frame (animation) this many pixels a frame, each
    # video in a random direction; 0: the frames start from its copy (and so barely move).
    animation_speed: float = 0.0
    prediction: str = "eps"
    min_snr_gamma: float = 0.0  # 0: every timestep's loss counts equally
    resolution: int = 32
    split: str = "video"
    flip: bool = False
    source_fps: float = 24.0
    sampler: str = "ddim"  # diffusion.get_sampler
    name: str = "interpolation"

    makes_videos: ClassVar[bool] = True
    sampling_overrides: ClassVar[tuple[tuple[str, str], ...]] = (
        ("frame_noise_correlation", "frame_noise_correlation"),
        ("start_strength", "start_strength"),
        ("sampler", "sampler"),
    )

    @classmethod
    def from_config(cls, config) -> InterpolationStage:
        data = config.data
        unet = UNetConfig.from_dict(config.unet).replace(
            extra_in_channels=MASK_CHANNELS, fps_conditioning=True, temporal=True
        )
        num_frames = (data.num_keyframes - 1) * data.keyframe_skip + 1
        return cls(
            schedule=make_schedule(config.diffusion.schedule, config.diffusion.num_timesteps),
            unet=unet,
            clips=ClipSampling(num_frames=num_frames, frame_skips=tuple(data.frame_skips)),
            keyframe_skip=data.keyframe_skip,
            mode_weights=tuple(data.mode_weights),
            condition_drop_rate=config.diffusion.condition_drop_rate,
            prediction=config.diffusion.prediction,
            **present(
                config.diffusion,
                "frame_noise_correlation",
                "hold_given_frames",
                "start_strength",
                "start_follows_motion",
                "animation_speed",
                "min_snr_gamma",
                "sampler",
            ),
            **present(config, "clip_from"),
            resolution=data.resolution,
            split=data.video_split,
            flip=data.flip,
        )

    @property
    def num_frames(self) -> int:
        return self.clips.num_frames

    def problems(self) -> list[str]:
        found = []
        if self.keyframe_skip < 1:
            found.append(f"config.data.keyframe_skip must be >= 1, got {self.keyframe_skip}")
        if self.num_frames < 2:
            found.append("config.data.num_keyframes must be >= 2")
        if self.animation_speed < 0:
            found.append(
                f"config.diffusion.animation_speed is pixels a frame, so not negative; "
                f"got {self.animation_speed}"
            )
        found += self.sampling_problems() + self.embedding_problems()
        return found + resolution_problems(self.resolution, self.unet)

    def sampling_problems(self) -> list[str]:
        return (
            frame_noise_problems(self.frame_noise_correlation)
            + start_problems(self.start_strength)
            + self.sampler_problems()
        )

    def operations(self) -> list:
        return [
            SampleClip(self.clips, decode_size=self.resolution),
            CropFlipScale(self.resolution, flip=self.flip),
            RandomFrameMask(self.keyframe_skip, self.mode_weights),
        ]

    def loss(self, model: SpatioTemporalUNet, batch: dict, key: jax.Array, timesteps=None):
        """batch: 'video' (B, F, H, W, 3) in [-1, 1], 'mask' (B, F), 'fps' (B,), 'embedding'
        (B, E) if conditioned."""
        drop_key, diffusion_key, dropout_key = jax.random.split(key, 3)
        video, mask = batch["video"], batch["mask"]
        cond = {
            "fps": batch["fps"],
            "extra": masked_inputs(video, mask),
            **self.training_embedding(model.config, batch, drop_key, drop=timesteps is None),
        }

        def model_fn(x_t, t):
            deterministic = timesteps is not None
            return model(x_t, t, dropout_key=dropout_key, deterministic=deterministic, **cond)

        to_generate = (1.0 - mask)[:, :, None, None, None]  # (B, F, 1, 1, 1)
        return diffusion_loss(
            model_fn,
            video,
            diffusion_key,
            self.schedule,
            self.prediction,
            weights=to_generate,
            min_snr_gamma=self.min_snr_gamma,
            timesteps=timesteps,
        )

    def generate(
        self,
        graphdef: nnx.GraphDef,
        params: nnx.State,
        key: jax.Array,
        video: jax.Array,
        mask: jax.Array,
        fps: jax.Array,
        num_steps: int,
        embedding: jax.Array | None = None,
        guidance_scale: float | None = None,
    ) -> jax.Array:
        """Fill in the frames where `mask` is 0; frames where it is 1 come back exactly as given.
        A conditioned ↑F takes the unit-norm CLIP image `embedding` (B, E) of the video."""
        cond, guidance_scale = self.sampling_embedding(embedding, guidance_scale)
        cond.update(fps=fps, extra=masked_inputs(video, mask))
        noise_key, sample_key = jax.random.split(key)
        x_T = initial_noise(noise_key, video.shape, self.frame_noise_correlation)  # (B, F, H, W, 3)
        animation = (
            drift_velocity(jax.random.fold_in(noise_key, 1), video.shape[0], self.animation_speed)
            if self.animation_speed
            else None
        )
        generated = self.sample_fn()(
            unet_denoise_fn(graphdef),
            params,
            x_T,
            sample_key,
            self.schedule,
            cond,
            num_steps=num_steps,
            prediction=self.prediction,
            guidance_scale=guidance_scale,
            known=(video, mask) if self.hold_given_frames else None,
            init=blend_given(video, mask, self.start_follows_motion, animation)
            if self.start_strength < 1
            else None,
            strength=self.start_strength,
        )
        return jnp.where(mask[:, :, None, None, None] > 0, video, generated)

    def sample(self, graphdef, params, key, count: int, num_steps: int, batch: dict):
        """Interpolation of the first `count` training clips from their keyframes (and their
        embeddings, when conditioned)."""
        video = batch["video"][:count]
        keyframes = jnp.zeros(video.shape[:2]).at[:, :: self.keyframe_skip].set(1.0)  # (B, F)
        fps = batch["fps"][:count]
        embedding = batch["embedding"][:count] if self.unet.embedding_dim else None
        return self.generate(
            graphdef, params, key, video, keyframes, fps, num_steps, embedding
        ), fps[0]
