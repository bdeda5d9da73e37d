"""The whole Make-A-Video cascade at inference: SR_h ∘ SR^t_l ∘ ↑F ∘ D^t ∘ P(x̂, C_x(x)).

`Cascade.load(DIR, mesh)` reads one export (or training workdir) per stage from `DIR/<stage>`,
checks that the stages fit together (widths, resolutions), and runs them jit-compiled with the
parameters sharded on the mesh and the batch split over its batch axes. Entry points:

* `text_to_video(prompts)`: CLIP text -> prior -> keyframes -> interpolation -> SR_l -> SR_h.
* `variations(video)`: the CLIP image embedding of a given video's middle frame replaces the prior.
* `from_frames(video, mode)`: ↑F fills in a given video ('interpolate' between its frames,
  'extrapolate' it, or 'animate' a single image), then the SR stages.

Every entry point returns each stage's output, (N, F, H, W, 3) in [-1, 1], in cascade order.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.data import files
from mav_jax.models.clip import unit
from mav_jax.models.frozen_clip import FrozenClip
from mav_jax.parallel.mesh_context import use_mesh
from mav_jax.parallel.sharding import BATCH_AXES, batch_shards
from mav_jax.stages import stage_from_config
from mav_jax.stages.frame_modes import frame_mask, spread_keyframes
from mav_jax.stages.keyframes import SOURCE_FPS
from mav_jax.stages.prior import clip_problems, sample_image_embeddings
from mav_jax.stages.sampling import SamplingOptions
from mav_jax.train.weights import load_weights

ORDER = ("clip", "prior", "keyframes", "interpolation", "sr_low", "sr_high")
VIDEO_STAGES = ORDER[2:]


def _given(option: float | None, configured: float) -> float:
    """A sampling option where set, else the stage config's value."""
    return float(configured) if option is None else float(option)


class CascadeError(ValueError):
    """The checkpoints do not form a cascade (missing, of another stage, or mismatched)."""


@dataclasses.dataclass
class LoadedStage:
    stage: object  # the Stage built from the export's config
    graphdef: nnx.GraphDef
    params: nnx.State
    config: object  # ml_collections.ConfigDict


def _load_stage(path: str, name: str, mesh: Mesh) -> LoadedStage:
    config, graphdef, params = load_weights(path, mesh)
    if config.get("stage") != name:
        raise CascadeError(
            f"{path} holds a '{config.get('stage')}' checkpoint, but the cascade "
            f"expects '{name}' there."
        )
    return LoadedStage(stage_from_config(config), graphdef, params, config)


def _resolution_problems(stages: dict[str, LoadedStage]) -> list[str]:
    """Each stage's input resolution must be the previous stage's output resolution."""
    found = []
    chain = [name for name in VIDEO_STAGES if name in stages]
    for before, after in zip(chain, chain[1:], strict=False):
        produced = stages[before].stage.resolution
        wanted = stages[after].stage.resolution // stages[after].stage.factor
        if produced != wanted:
            found.append(
                f"{before} makes {produced}x{produced} frames but {after} takes {wanted}x{wanted}"
            )
    return found


def _embedding_problems(stages: dict[str, LoadedStage], clip: FrozenClip | None) -> list[str]:
    """D^t must condition on embeddings of the cascade's CLIP width; ↑F may, or may not at all."""
    found = []
    widths = {
        name: stages[name].stage.unet.embedding_dim
        for name in ("keyframes", "interpolation")
        if name in stages
    }
    if clip is None:
        if widths.get("interpolation"):
            found.append(
                "the interpolation stage conditions on CLIP image embeddings, so the "
                "cascade needs its clip checkpoint too"
            )
        return found
    for name, width in widths.items():
        if width != clip.embed_dim and (width or name == "keyframes"):
            found.append(
                f"the {name} stage conditions on {width}-wide embeddings (0: none) but "
                f"the CLIP embeds in {clip.embed_dim}"
            )
    return found


class Cascade:
    def __init__(self, clip: FrozenClip | None, stages: dict[str, LoadedStage], mesh: Mesh):
        self.clip, self.stages, self.mesh = clip, stages, mesh
        self.batch_sharding = NamedSharding(mesh, PartitionSpec(BATCH_AXES))
        self.batch_divisor = batch_shards(mesh)
        self._jitted: dict[tuple, object] = {}

    def _jit(self, name: str, options: SamplingOptions, fn):
        """One jax.jit per stage and sampling options (the whole frozen dataclass: every setting
        a compiled sampler bakes in comes from it, or from the loaded checkpoints), reused across
        calls. `fn` must take every shape from its arguments."""
        key = (name, options)
        if key not in self._jitted:
            jitted = jax.jit(fn)

            def run(*args, **kwargs):  # traced with splash attention per shard of the mesh
                with use_mesh(self.mesh):
                    return jitted(*args, **kwargs)

            self._jitted[key] = run
        return self._jitted[key]

    @classmethod
    def load(cls, directory: str, mesh: Mesh, stages: tuple[str, ...] = ORDER) -> Cascade:
        """Stages `stages` from `directory/<stage>` (exports or workdirs), checked to fit."""
        missing = [s for s in stages if not files.exists(os.path.join(directory, s))]
        if missing:
            raise CascadeError(
                f"No {', '.join(missing)} checkpoint in {directory}. The cascade reads "
                f"{directory}/<stage> for each of {', '.join(stages)} (an export from "
                "python -m mav_jax.export, or a training workdir)."
            )
        clip = FrozenClip(os.path.join(directory, "clip"), mesh) if "clip" in stages else None
        loaded = {
            s: _load_stage(os.path.join(directory, s), s, mesh) for s in stages if s != "clip"
        }
        problems = _resolution_problems(loaded)
        if "prior" in loaded:
            problems += clip_problems(clip, loaded["prior"].stage.prior)
        problems += _embedding_problems(loaded, clip)
        if problems:
            raise CascadeError("The checkpoints do not fit together: " + "; ".join(problems) + ".")
        return cls(clip, loaded, mesh)

    # -- helpers -------------------------------------------------------------------------------

    def _loaded(self, name: str) -> LoadedStage:
        """Stage `name`, or a CascadeError when the cascade was loaded without it."""
        if name not in self.stages:
            raise CascadeError(self._missing(name))
        return self.stages[name]

    def _frozen_clip(self) -> FrozenClip:
        if self.clip is None:
            raise CascadeError(self._missing("clip"))
        return self.clip

    def _missing(self, name: str) -> str:
        have = ", ".join(([] if self.clip is None else ["clip"]) + list(self.stages)) or "none"
        return (
            f"This cascade was loaded without its {name} stage (it has {have}); pass "
            f"'{name}' in Cascade.load's stages."
        )

    def _stage(self, name: str, options: SamplingOptions):
        """The stage as loaded, with the sampling options that override its config applied."""
        try:
            return self._loaded(name).stage.with_sampling(options)
        except ValueError as error:
            raise CascadeError(str(error)) from error

    def _steps(self, name: str, options: SamplingOptions) -> int:
        if options.steps is not None:
            return options.steps
        return int(self.stages[name].config.diffusion.sampling_steps)

    def _pad(self, x: np.ndarray) -> tuple[jax.Array, int]:
        """Pad the batch to a multiple of the mesh's batch axes and shard it over them."""
        n = x.shape[0]
        padded = -(-n // self.batch_divisor) * self.batch_divisor
        x = np.concatenate([x, np.repeat(x[-1:], padded - n, axis=0)]) if padded > n else x
        return jax.device_put(x, self.batch_sharding), n

    def output_fps(self, options: SamplingOptions) -> float:
        if options.fps is not None:
            return options.fps
        if "interpolation" in self.stages:
            return SOURCE_FPS / min(self.stages["interpolation"].stage.clips.frame_skips)
        return SOURCE_FPS / min(self._loaded("keyframes").stage.clips.frame_skips)

    def keyframe_fps(self, options: SamplingOptions) -> float:
        """The keyframes' frame rate: the output's, divided by the interpolation's frame skip."""
        skip = (
            self.stages["interpolation"].stage.keyframe_skip
            if "interpolation" in self.stages
            else 1
        )
        return self.output_fps(options) / skip

    def fps_of(self, stage: str, options: SamplingOptions) -> float:
        return self.keyframe_fps(options) if stage == "keyframes" else self.output_fps(options)

    # -- stages ---------------------------------------------------------------------------------

    def embed_prompts(self, prompts: list[str], options: SamplingOptions) -> jax.Array:
        """Prompts -> (N, E) unit CLIP image embeddings through the prior."""
        clip, prior = self._frozen_clip(), self._loaded("prior")
        for prompt in prompts:
            if not prompt.strip():
                raise ValueError("A prompt is empty; say what the video should show.")
        tokens = clip.tokenize(prompts)  # PromptTooLongError names the limit
        tokens, n = self._pad(tokens)
        text_embedding, text_tokens = clip.encode_text(tokens)
        guidance = _given(options.prior_guidance, prior.config.diffusion.guidance_scale)
        sample = self._jit(
            "prior",
            options,
            functools.partial(
                sample_image_embeddings,
                prior.graphdef,
                schedule=prior.stage.schedule,
                num_steps=self._steps("prior", options),
                guidance_scale=guidance,
                sampler=self._stage("prior", options).sample_fn(),
            ),
        )
        key = jax.random.key(options.seed)
        return sample(
            prior.params, key, text_tokens=text_tokens, tokens=tokens, text_embedding=text_embedding
        )[:n]

    def keyframes(self, embeddings: jax.Array, options: SamplingOptions) -> jax.Array:
        """(N, E) unit CLIP image embeddings -> (N, F, H, W, 3) keyframes: with more than one
        candidate (D^t's config.diffusion.candidates), the best by `keyframe_candidates`."""
        if self._stage("keyframes", options).candidates == 1:
            return self._sample_keyframes(embeddings, options)
        videos, scores = self.keyframe_candidates(embeddings, options)
        return videos[jnp.arange(videos.shape[0]), jnp.argmax(scores, axis=1)]

    def keyframe_candidates(
        self, embeddings: jax.Array, options: SamplingOptions
    ) -> tuple[jax.Array, jax.Array]:
        """K keyframe videos per embedding, (N, K, F, H, W, 3), and their CLIP scores (N, K): the
        cosine between the CLIP image embedding of a video's middle keyframe (the frame whose
        embedding D^t is trained on) and the embedding it was drawn from. CLIP reranking (as
        DALL-E's): D^t draws the embedding's content in some samples and not others, and CLIP
        tells them apart better than chance. Scoring every frame instead favours videos whose
        content moves less. The K samples of an embedding are one batch of N * K, so memory
        grows K-fold."""
        k = self._stage("keyframes", options).candidates
        embeddings = np.asarray(embeddings, np.float32)
        n = embeddings.shape[0]
        repeated = np.repeat(embeddings, k, axis=0)  # (N * K, E), an embedding's K in a row
        videos = self._sample_keyframes(repeated, options)  # (N * K, F, H, W, 3)
        scores = self._clip_scores(videos, repeated)
        return videos.reshape(n, k, *videos.shape[1:]), scores.reshape(n, k)

    def _clip_scores(self, videos: jax.Array, embeddings: np.ndarray) -> jax.Array:
        """(M, F, H, W, 3) videos, (M, E) unit embeddings -> (M,) cosine between each video's
        middle frame's CLIP image embedding and its embedding."""
        middle = self._embed_frames(np.asarray(videos[:, videos.shape[1] // 2]))  # (M, E)
        return jnp.sum(middle * jnp.asarray(embeddings), axis=-1)

    def _sample_keyframes(self, embeddings: jax.Array, options: SamplingOptions) -> jax.Array:
        """One keyframe video per embedding: (N, E) -> (N, F, H, W, 3)."""
        kf = self._loaded("keyframes")
        fps = self.keyframe_fps(options)
        guidance = _given(options.guidance, kf.config.diffusion.guidance_scale)
        embeddings, n = self._pad(np.asarray(embeddings))
        key = jax.random.fold_in(jax.random.key(options.seed), 1)
        steps = self._steps("keyframes", options)
        conditioned = bool(kf.stage.unet.embedding_dim)
        stage = self._stage("keyframes", options)

        def generate(params, key, embeddings):
            count = embeddings.shape[0]
            condition = embeddings if conditioned else None
            return stage.generate(kf.graphdef, params, key, count, fps, steps, condition, guidance)

        return self._jit("keyframes", options, generate)(kf.params, key, embeddings)[:n]

    def interpolate(
        self,
        video: jax.Array,
        mask: np.ndarray,
        embeddings: jax.Array | None,
        options: SamplingOptions,
    ) -> jax.Array:
        """↑F on (N, F, H, W, 3): frames where `mask` (F,) is 1 come back exactly. `embeddings`
        (N, E) are the videos' unit CLIP image embeddings (None: ↑F is not conditioned)."""
        interp = self._loaded("interpolation")
        video, n = self._pad(np.asarray(video, np.float32))
        if embeddings is not None:
            embeddings, _ = self._pad(np.asarray(embeddings, np.float32))
        b = video.shape[0]
        masks = jnp.broadcast_to(jnp.asarray(mask, jnp.float32), (b, mask.shape[0]))
        fps = jnp.full((b,), self.output_fps(options), jnp.float32)
        key = jax.random.fold_in(jax.random.key(options.seed), 2)
        steps = self._steps("interpolation", options)
        guidance = float(interp.config.diffusion.get("guidance_scale", 1.0))
        stage = self._stage("interpolation", options)
        generate = self._jit(
            "interpolation",
            options,
            functools.partial(
                stage.generate,
                interp.graphdef,
                num_steps=steps,
                guidance_scale=None if guidance == 1.0 else guidance,
            ),
        )
        return generate(interp.params, key, video, masks, fps, embedding=embeddings)[:n]

    def interpolate_keyframes(
        self, keyframes: jax.Array, embeddings: jax.Array | None, options: SamplingOptions
    ) -> jax.Array:
        """↑F from keyframes (N, K, H, W, 3): (N, (K - 1) * keyframe_skip + 1, H, W, 3), the
        keyframes kept exactly and the frames between them generated."""
        skip = self._loaded("interpolation").stage.keyframe_skip
        given, mask = spread_keyframes(np.asarray(keyframes), skip)
        return self.interpolate(given, mask, embeddings, options)

    def upscale(self, name: str, video: jax.Array, options: SamplingOptions) -> jax.Array:
        sr = self._loaded(name)
        video, n = self._pad(np.asarray(video, np.float32))
        fps = jnp.full((video.shape[0],), self.output_fps(options), jnp.float32)
        key = jax.random.fold_in(jax.random.key(options.seed), 3 + VIDEO_STAGES.index(name))
        steps, stage = self._steps(name, options), self._stage(name, options)
        upscale = self._jit(
            name, options, functools.partial(stage.upscale, sr.graphdef, num_steps=steps)
        )
        return upscale(sr.params, key, video, fps if stage.unet.fps_conditioning else None)[:n]

    # -- entry points --------------------------------------------------------------------------

    def _after_keyframes(
        self, keyframes: jax.Array, embeddings: jax.Array, options: SamplingOptions
    ) -> dict:
        outputs = {"keyframes": keyframes}
        video = keyframes
        if "interpolation" in self.stages:
            video = outputs["interpolation"] = self.interpolate_keyframes(
                keyframes, embeddings, options
            )
        return self._super_resolve(video, outputs, options)

    def _super_resolve(self, video: jax.Array, outputs: dict, options: SamplingOptions) -> dict:
        for name in ("sr_low", "sr_high"):
            if name in self.stages:
                video = outputs[name] = self.upscale(name, video, options)
        return outputs

    def text_to_video(self, prompts: list[str], options: SamplingOptions) -> dict:
        embeddings = self.embed_prompts(prompts, options)
        return self._after_keyframes(self.keyframes(embeddings, options), embeddings, options)

    def variations(self, video: np.ndarray, options: SamplingOptions, count: int = 1) -> dict:
        """`count` new videos conditioned on the CLIP image embedding of `video`'s middle frame
        ((F, H, W, 3) in [-1, 1])."""
        embeddings = jnp.repeat(self._embed_frames(video[None, video.shape[0] // 2]), count, axis=0)
        return self._after_keyframes(self.keyframes(embeddings, options), embeddings, options)

    def _embed_frames(self, frames: np.ndarray) -> jax.Array:
        """(M, H, W, 3) in [-1, 1] -> (M, E) unit CLIP image embeddings, the batch over the mesh."""
        frames, count = self._pad(np.asarray(frames, np.float32))
        return unit(self._frozen_clip().encode_image(frames)[:count])

    def from_frames(self, video: np.ndarray, mode: str, options: SamplingOptions) -> dict:
        """↑F given frames ((F, H, W, 3) in [-1, 1], at the interpolation stage's resolution):
        'interpolate' puts the F frames keyframe_skip apart and fills the gaps; 'extrapolate'
        continues them for as many frames again; 'animate' starts from the first frame only."""
        interp = self._loaded("interpolation").stage
        size = interp.resolution
        if video.shape[1:3] != (size, size):
            raise ValueError(
                f"Frames are {video.shape[1]}x{video.shape[2]}; the interpolation "
                f"stage works at {size}x{size} (resize them first)."
            )
        if mode == "interpolate":
            given = spread_keyframes(video[None], interp.keyframe_skip)[0][0]
            frames = given.shape[0]
        elif mode == "extrapolate":
            frames = 2 * video.shape[0] - 1
            given = np.zeros((frames, *video.shape[1:]), np.float32)
            given[: video.shape[0]] = video
        elif mode == "animate":
            frames = interp.num_frames
            given = np.zeros((frames, *video.shape[1:]), np.float32)
            given[0] = video[0]
        else:
            raise ValueError(f"Unknown mode '{mode}': interpolate, extrapolate or animate.")
        mask = frame_mask(mode, frames, interp.keyframe_skip)
        # ↑F trained on the embedding of the clip's middle frame: take the given frame nearest it.
        nearest = int(
            np.argmin(np.where(mask > 0, np.abs(np.arange(frames) - frames // 2), frames))
        )
        conditioned = bool(interp.unet.embedding_dim)
        embedding = self._embed_frames(given[None, nearest]) if conditioned else None
        out = self.interpolate(given[None], mask, embedding, options)
        return self._super_resolve(out, {"interpolation": out}, options)
