"""How to sample: the one set of sampling options every entry point (cascade, CLI, benches) uses.

Each option left at None takes the value the stage's config gives (`config.diffusion.*`), so the
defaults live in one place: the configs, and the stage dataclasses for configs that predate a field.
The dataclass is frozen and hashable, so compiled samplers are cached on it whole; `seed` is left
out of equality because keys are made outside the compiled functions.
"""

from __future__ import annotations

import dataclasses

# The paper's sampling, every aid off: D^t in one pass from independent noise per frame (no
# drift), one keyframe candidate, ↑F and the SR stages from pure noise, SR not held to its input.
PLAIN = dict(
    frame_noise_correlation=0.0,
    frame_noise_drift=0.0,
    steady_motion_strength=0.0,
    keyframe_candidates=1,
    start_strength=1.0,
    low_res_consistency=0.0,
)


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    seed: int = dataclasses.field(default=0, compare=False)  # every stage's key derives from it
    steps: int | None = None  # sampler steps per stage (config.diffusion.sampling_steps)
    prior_guidance: float | None = None  # the prior's guidance scale
    guidance: float | None = None  # the keyframe decoder's guidance scale
    fps: float | None = None  # output frame rate; None: the interpolation stage's highest
    # Correlation of the frames' initial noise in D^t and ↑F (stages.conditioned.initial_noise).
    frame_noise_correlation: float | None = None
    # Pixels a frame the shared part of D^t's frame noise drifts (diffusion.frame_motion).
    frame_noise_drift: float | None = None
    # > 0: D^t samples a second pass from the first's steadily moved middle keyframe; 0: one pass.
    steady_motion_strength: float | None = None
    # Keyframe videos D^t draws per prompt, keeping the one CLIP scores best.
    keyframe_candidates: int | None = None
    # Fraction of their sampler steps ↑F, SR^t_l and SR_h run from a noised guess (1: from noise).
    start_strength: float | None = None
    # How much of each SR step's x0 prediction is held to the stage's input (0-1).
    low_res_consistency: float | None = None
    # "ddim" or "ddpm" for every stage (config.diffusion.sampler).
    sampler: str | None = None

    def plain(self) -> SamplingOptions:
        """These options with every sampling aid off (`PLAIN`), as the paper samples."""
        return dataclasses.replace(self, **PLAIN)

    def given(self) -> dict:
        """The options set (not None), by name, seed aside."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "seed" and getattr(self, f.name) is not None
        }
