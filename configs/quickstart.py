"""The quickstart's tiny cascade: every stage's config, in training order, sized for a 2-core CPU.

    python -m mav_jax.quickstart --workdir=runs/quickstart

Resolutions chain: keyframes 16x16 (the Moving Digits scans' own 8x8 digits), 5 keyframes at
8 fps -> ↑F (skip 3) 13 frames at 24 fps -> SR^t_l 32x32 -> SR_h 64x64. `steps` is the training
budget of each stage; `scale` in `stages(scale)` multiplies it (the tests use a tiny scale).
"""

from __future__ import annotations

from collections.abc import Mapping

import ml_collections

from mav_jax.configs import clip, interpolation, keyframes, prior, sr_high, sr_low

KEYFRAME_RESOLUTION = 16  # D^t's and ↑F's frames, and CLIP's and the prior's images
UNET = dict(  # D^t's and ↑F's U-Net
    base_channels=16,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_levels=(1,),
    num_heads=2,
    embedding_dim=64,
    dropout=0.0,
)
# Sampling aids (not in the paper; training is unchanged). D^t's frame noise: correlation and
# pixels a frame its shared part drifts.
FRAME_NOISE_CORRELATION, FRAME_NOISE_DRIFT = 0.8, 2.0
STEADY_MOTION_STRENGTH = 0.2  # D^t's second pass from the first's moved middle keyframe
KEYFRAME_GUIDANCE = 5.0  # D^t's classifier-free guidance scale (3 elsewhere)
# Where ↑F and the SR stages start (1: pure noise), and how far SR is held to its input.
INTERPOLATION_START, SR_START, SR_HELD = 0.1, 1.0, 1.0
PROMPTS = (
    "a red 3 moving right",
    "the number seven in cyan drifting down",
    "a yellow 0 moving up and left",
    "a white handwritten 5 bouncing around, setting off left",
)


def _step_fields(steps: int) -> dict:
    """A run's step count and the warmup, checkpoint and log intervals that follow from it."""
    return dict(
        num_steps=steps,
        warmup_steps=min(50, steps // 10),
        checkpoint_every=max(steps // 4, 1),
        log_every=max(steps // 20, 1),
    )


def _train(config, steps: int, batch: int, lr: float, **extra) -> None:
    """No trainer samples: the quickstart's own videos keep every stage's output, and each
    stage's sampler compile would cost about half a minute."""
    config.train.update(
        global_batch_size=batch,
        learning_rate=lr,
        sample_every=0,
        num_samples=0,
        **_step_fields(steps),
        **extra,
    )
    config.mesh.update(data=-1, fsdp=1, tensor=1)
    # Local files on 2 cores: one reading thread, one batch ahead. Grain's 16 threads and 500
    # records ahead cost 10-15 ms a batch in its own bookkeeping here.
    config.data.update(read_threads=1, prefetch_buffer_size=batch)


def _override_steps(runs: list, run_steps: Mapping[str, int]) -> list:
    """Set the step counts of the runs named in `run_steps` (run name -> steps)."""
    names = [name for name, _ in runs]
    unknown = sorted(set(run_steps) - set(names))
    if unknown:
        raise ValueError(
            f"No quickstart run is named {', '.join(unknown)}; the runs are {', '.join(names)}."
        )
    for name, config in runs:
        if name in run_steps:
            if run_steps[name] < 1:
                raise ValueError(f"Run {name} needs at least 1 step, got {run_steps[name]}.")
            config.train.update(**_step_fields(run_steps[name]))
    return runs


def stages(
    data_dir: str, workdir: str, scale: float = 1.0, run_steps: Mapping[str, int] | None = None
) -> list[tuple[str, ml_collections.ConfigDict]]:
    """(run name, config) for every training run of the tiny cascade, in order. Later stages read
    earlier ones' exports from WORKDIR/checkpoints/<stage>. `run_steps` (run name -> steps)
    replaces the scaled step counts of the runs it names."""
    exports = f"{workdir}/checkpoints"
    steps = lambda n: max(int(n * scale), 2)  # noqa: E731
    runs = []

    # Every run: _train(config, steps, global batch, learning rate). Why these: docs/results.md.
    c = clip.get_config("tiny")  # at the keyframes' 16x16, the frames it embeds downstream
    c.clip.update(image_size=KEYFRAME_RESOLUTION, patch_size=4)  # 16 patches, as 32 / 8
    c.data.update(data_dir=data_dir, resolution=KEYFRAME_RESOLUTION)
    _train(c, steps(3000), 64, 1e-3)
    runs.append(("clip", c))

    c = prior.get_config("tiny")
    c.clip_from = f"{exports}/clip"
    c.data.update(data_dir=data_dir, resolution=KEYFRAME_RESOLUTION)
    _train(c, steps(600), 64, 5e-4)
    runs.append(("prior", c))

    for phase in ("image", "video"):
        c = keyframes.get_config("tiny")
        c.phase, c.clip_from = phase, f"{exports}/clip"
        c.unet.update(UNET)
        c.data.update(
            data_dir=data_dir, resolution=KEYFRAME_RESOLUTION, num_frames=5, frame_skips=(3,)
        )
        if phase == "video":
            c.init_from = f"{exports}/keyframes_image"
            c.diffusion.frame_noise_correlation = FRAME_NOISE_CORRELATION
            c.diffusion.frame_noise_drift = FRAME_NOISE_DRIFT
            c.diffusion.steady_motion_strength = STEADY_MOTION_STRENGTH
            c.diffusion.guidance_scale = KEYFRAME_GUIDANCE
            _train(c, steps(1600), 16, 4e-3)
        else:
            _train(c, steps(1640), 32, 1e-3)
        runs.append((f"keyframes_{phase}", c))

    # Trained on 3 keyframes (7 frames); its sinusoidal frame positions sample 5 (13) all the same.
    c = interpolation.get_config("tiny")
    c.init_from, c.clip_from = f"{exports}/keyframes", f"{exports}/clip"
    c.diffusion.update(
        start_strength=INTERPOLATION_START, start_follows_motion=True, animation_speed=0.5
    )
    c.unet.update(UNET)
    c.data.update(
        data_dir=data_dir, resolution=KEYFRAME_RESOLUTION, num_keyframes=3, keyframe_skip=3
    )
    _train(c, steps(480), 8, 2e-3)
    runs.append(("interpolation", c))

    # No attention, as the SR configs; trained on native-pixel patches of half the frame.
    sr_unet = {**UNET, "embedding_dim": 0, "attention_levels": ()}
    c = sr_low.get_config("tiny")
    c.unet.update(sr_unet)
    c.diffusion.update(start_strength=SR_START, low_res_consistency=SR_HELD)
    c.data.update(data_dir=data_dir, resolution=32, crop=16, factor=2, num_frames=4)
    _train(c, steps(900), 16, 6e-3)
    runs.append(("sr_low", c))

    c = sr_high.get_config("tiny")
    c.unet.update(sr_unet)
    c.diffusion.update(start_strength=SR_START, low_res_consistency=SR_HELD)
    c.data.update(
        dataset="moving_digits/tiny64", data_dir=data_dir, resolution=64, crop=32, factor=2
    )
    _train(c, steps(900), 16, 6e-3)
    runs.append(("sr_high", c))
    return _override_steps(runs, run_steps or {})


# Where each run is exported (WORKDIR/checkpoints/<name>); the cascade reads the stage names.
EXPORTS = {
    "clip": "clip",
    "prior": "prior",
    "keyframes_image": "keyframes_image",
    "keyframes_video": "keyframes",
    "interpolation": "interpolation",
    "sr_low": "sr_low",
    "sr_high": "sr_high",
}
