"""The quickstart's tiny cascade: every stage's config, in training order, sized for a 2-core CPU.

    python -m mav_jax.quickstart --workdir=runs/quickstart

Resolutions chain: keyframes 16x16 (the Moving Digits scans' own 8x8 digits), 5 keyframes at
8 fps -> ↑F (skip 3) 13 frames at 24 fps -> SR^t_l 32x32 -> SR_h 64x64. `steps` is the training
budget of each stage; `scale` in `stages(scale)` multiplies it (the tests use a tiny scale).
"""

from __future__ import annotations

from collections.abc import Mapping

import ml_collections

from configs import clip, interpolation, keyframes, prior, sr_high, sr_low

KEYFRAME_RESOLUTION = 16  # D^t's and ↑F's frames, and CLIP's and the prior's images
UNET = dict(base_channels=32, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
            num_heads=2, embedding_dim=64, dropout=0.0)  # fmt: skip
# Sampling only (training is unchanged): D^t's keyframes start from mixed noise, 0.8 correlated,
# so they agree on the shape their temporal layers, trained only briefly here, do not yet make
# them agree on. 8 prompts: keyframe flicker (mean squared change between keyframes) 0.061 at 0,
# 0.019 at 0.8. Not for ↑F: on held-out keyframes its in-between MSE went 0.029 -> 0.043 at 0.8.
FRAME_NOISE_CORRELATION = 0.8
PROMPTS = (
    "a red 3 moving right",
    "the number seven in cyan drifting down",
    "a yellow 0 moving up and left",
    "a white handwritten 5 bouncing around, setting off left",
)


def _step_fields(steps: int) -> dict:
    """A run's step count and the warmup, checkpoint and log intervals that follow from it."""
    return dict(num_steps=steps, warmup_steps=min(50, steps // 10),
                checkpoint_every=max(steps // 4, 1), log_every=max(steps // 20, 1))  # fmt: skip


def _train(config, steps: int, batch: int, lr: float, **extra) -> None:
    """No trainer samples: the quickstart's own videos keep every stage's output, and each
    stage's sampler compile would cost about half a minute."""
    config.train.update(global_batch_size=batch, learning_rate=lr, sample_every=0, num_samples=0,
                        **_step_fields(steps), **extra)  # fmt: skip
    config.mesh.update(data=-1, fsdp=1, tensor=1)
    # Local files on 2 cores: one reading thread, one batch ahead. Grain's 16 threads and 500
    # records ahead cost 10-15 ms a batch in its own bookkeeping here.
    config.data.update(read_threads=1, prefetch_buffer_size=batch)


def _override_steps(runs: list, run_steps: Mapping[str, int]) -> list:
    """Set the step counts of the runs named in `run_steps` (run name -> steps)."""
    names = [name for name, _ in runs]
    unknown = sorted(set(run_steps) - set(names))
    if unknown:
        raise ValueError(f"No quickstart run is named {', '.join(unknown)}; the runs are "
                         f"{', '.join(names)}.")  # fmt: skip
    for name, config in runs:
        if name in run_steps:
            if run_steps[name] < 1:
                raise ValueError(f"Run {name} needs at least 1 step, got {run_steps[name]}.")
            config.train.update(**_step_fields(run_steps[name]))
    return runs


def stages(data_dir: str, workdir: str, scale: float = 1.0,
           run_steps: Mapping[str, int] | None = None) -> list[tuple[str, ml_collections.ConfigDict]]:  # fmt: skip
    """(run name, config) for every training run of the tiny cascade, in order. Later stages read
    earlier ones' exports from WORKDIR/checkpoints/<stage>. `run_steps` (run name -> steps)
    replaces the scaled step counts of the runs it names."""
    exports = f"{workdir}/checkpoints"
    steps = lambda n: max(int(n * scale), 2)  # noqa: E731
    runs = []

    # At the keyframes' 16x16, the resolution every frame CLIP embeds downstream has (D^t's and
    # ↑F's conditioning, `--image`): zero-shot digit accuracy on held-out frames ("a red 0" ...
    # "a red 9") 0.63, against 0.50 for the same CLIP at 32x32 and 0.36 for that one fed 16x16.
    c = clip.get_config("tiny")
    c.clip.update(image_size=KEYFRAME_RESOLUTION, patch_size=4)  # 16 patches, as 32 / 8
    c.data.update(data_dir=data_dir, resolution=KEYFRAME_RESOLUTION)
    _train(c, steps(1500), 64, 1e-3)
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
        c.data.update(data_dir=data_dir, resolution=KEYFRAME_RESOLUTION, num_frames=5,
                      frame_skips=(3,))
        if phase == "video":
            c.init_from = f"{exports}/keyframes_image"
            c.diffusion.frame_noise_correlation = FRAME_NOISE_CORRELATION
            # 150 steps (160 s on 2 CPU cores) leave the temporal layers near their identity
            # start: the digit barely moves. Motion needs many more (bench/prompt_fidelity.py,
            # 0.8 correlation; the digit's centre steps 2.03 px a frame in real clips):
            #   150 steps: 0.57 px, digit right in 31% of frames
            #   1500: 1.45 px, 48%;  5000: 1.71 px, 62-63% (213 s on one H100, 66 min here)
            # `python -m mav_jax.quickstart --steps=keyframes_video=5000` asks for them.
            _train(c, steps(150), 16, 5e-4)
        else:
            # The decoder is where the digit was lost (bench/prompt_fidelity.py): 820 steps x 48
            # drew the prompt's digit in 14% of images (chance 10%), 1640 x 48 in 33%. 1640 x 32
            # costs about what 820 x 48 did plus the 30-minute budget's slack.
            _train(c, steps(1640), 32, 1e-3)
        runs.append((f"keyframes_{phase}", c))

    # Conditioned on CLIP as D^t is (it starts with D^t's conditioning weights). Trained on clips
    # of 3 keyframes (7 frames), half the cost of 5 (13): twice the steps for the same time. The
    # frame positions are sinusoidal, so it samples the cascade's 13 frames all the same.
    # bench/interpolation_quality.py: held-out in-between MSE 0.040 -> 0.029 for the change.
    c = interpolation.get_config("tiny")
    c.init_from, c.clip_from = f"{exports}/keyframes", f"{exports}/clip"
    c.unet.update(UNET)
    c.data.update(data_dir=data_dir, resolution=KEYFRAME_RESOLUTION, num_keyframes=3,
                  keyframe_skip=3)
    _train(c, steps(400), 8, 1e-3)
    runs.append(("interpolation", c))

    # Half as wide as the others, no attention (as the SR configs), and trained on native-pixel
    # patches of half the frame: about 16x cheaper a step than whole frames at full width, so 900
    # steps fit, enough to learn to follow the low-resolution input at high noise.
    sr_unet = {**UNET, "base_channels": 16, "embedding_dim": 0, "attention_levels": ()}
    c = sr_low.get_config("tiny")
    c.unet.update(sr_unet)
    c.data.update(data_dir=data_dir, resolution=32, crop=16, factor=2, num_frames=4)
    _train(c, steps(900), 16, 1e-3)
    runs.append(("sr_low", c))

    c = sr_high.get_config("tiny")
    c.unet.update(sr_unet)
    c.data.update(dataset="moving_digits/tiny64", data_dir=data_dir, resolution=64, crop=32, factor=2)
    _train(c, steps(900), 16, 1e-3)
    runs.append(("sr_high", c))
    return _override_steps(runs, run_steps or {})


# Where each run is exported (WORKDIR/checkpoints/<name>); the cascade reads the stage names.
EXPORTS = {"clip": "clip", "prior": "prior", "keyframes_image": "keyframes_image",
           "keyframes_video": "keyframes",
           "interpolation": "interpolation", "sr_low": "sr_low", "sr_high": "sr_high"}  # fmt: skip
