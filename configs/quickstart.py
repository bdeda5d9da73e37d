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
# D^t's and ↑F's U-Net. 16 base channels, not 32: a third of the cost a step, so D^t gets the
# 2400 video steps its temporal layers need to move the digit, at a higher learning rate
# (bench/prompt_fidelity.py, 0.8 correlation; the digit's centre steps 2.03 px a frame in real
# clips): width 32, 150 steps: step 0.64 px, digit right in 28% of frames; width 16, 1500 steps
# at lr 5e-4: 1.03 px, 28%; at 2e-3: 1.26 px, 47%; at 4e-3: 1.19 px, 55%.
UNET = dict(
    base_channels=16,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_levels=(1,),
    num_heads=2,
    embedding_dim=64,
    dropout=0.0,
)
# Sampling only (training is unchanged): D^t's keyframes start from mixed noise, 0.8 correlated,
# so they agree on the digit's shape (more than the temporal layers of so short a run make them),
# and the shared part drifts 2 pixels a frame (diffusion/frame_motion.py; the digit's centre steps
# 2.03 px a keyframe in real clips), so the digit it seeds moves steadily instead of staying put.
# bench/prompt_fidelity.py, 80 prompts (real clips: centre travels 4.50 px first to last,
# straightness 0.62): at 0.5 and no drift, travel 2.47 px, straightness 0.44, digit right in 53%
# of frames; at 0.8 and no drift 1.74, 0.39, 48%; at 0.8 and drift 1, 2, 3: travel 3.39, 3.84,
# 3.71, straightness 0.55, 0.55, 0.50, digit 50, 48, 47%. Not for ↑F: on held-out keyframes its
# in-between MSE went 0.029 -> 0.043 at 0.8.
FRAME_NOISE_CORRELATION, FRAME_NOISE_DRIFT = 0.8, 2.0
# Sampling only: D^t samples twice, the second pass from the first's middle keyframe moved at the
# first's median velocity (at the drift's, where the first left the digit in place), with 0.2 of
# its steps left (stages/keyframes.py), so the digit keeps one shape and one speed; the first
# pass's speed varied from keyframe to keyframe (the change in its step, 1.92 px, was more than
# its step, 1.74) and its end keyframes changed digit more often. bench/prompt_fidelity.py, 80
# prompts, keyframes, one pass -> second pass at 0.2 (at 0.1 / 0.3 / 0.5 of the steps, without
# the fallback for still digits: bench/README.md): change in step 1.92 -> 0.58 px (real clips
# 1.57, with bounces), straightness 0.55 -> 0.96 (real 0.62), travel 3.84 -> 5.18 px (real 4.50),
# the same digit across a video 61% -> 72%, digit 48% -> 46%, colour 90% -> 89%.
STEADY_MOTION_STRENGTH = 0.2
# Sampling only: D^t's classifier-free guidance scale (3 elsewhere). bench/prompt_fidelity.py, 80
# prompts, keyframes, two passes as above, guidance 3 / 4 / 5 / 7 / 10: digit 46 / 49 / 50 / 43 /
# 44%, colour 89 / 93 / 93 / 94 / 95%, the same digit across a video 72 / 76 / 79 / 76 / 74%; the
# step's change 0.58 / 0.66 / 0.64 / 0.66 / 0.75 px. At 1 and 2 (one pass) the prompt was lost.
KEYFRAME_GUIDANCE = 5.0
# Sampling only: ↑F and the SR stages start part-way down their samplers' schedules from a guess
# (↑F: the keyframes' blend, each moved along the translation between them; SR: the upsampled
# input), noised; SDEdit, Meng et al. 2022. So short a run leaves ↑F worse than its guess on
# held-out clips, and from pure noise it invents shape that flickers. bench/interpolation_quality.py,
# in-between MSE: from noise 0.0185; from the linear blend at 0.5, 0.0136; from the
# motion-compensated blend at 0.5, 0.0115, at 0.3, 0.0084 (flicker 0.88; real clips 1), at 0.1,
# 0.0056 (flicker 0.71), against 0.0107 and 0.0052 for the two blends themselves: ↑F adds nothing
# the blend has not, so it starts low. bench/prompt_fidelity.py --through=interpolation, 0.3 ->
# 0.1: digit 0.70 -> 0.72 of frames, the digit's step change 0.46 -> 0.33 px a frame.
# The SR stages (lr 6e-3, below) start from pure noise, as the paper, and hold every step's
# prediction to their input (each 2x2 block's mean to the input pixel; DDNM, Wang et al. 2023).
# bench/sr_quality.py, held-out, MSE / colour error: SR_h 0.0026 / 0.0264 unheld -> 0.0007 /
# 0.0066 held (bilinear upsampling 0.0074 / 0.0077; unheld from the upsampled input at 0.4,
# the recipe before, 0.0033 / 0.0176; held at 0.4, 0.0012 / 0.0072); SR^t_l 0.0176 / 0.0420 ->
# 0.0046 / 0.0110 (bilinear 0.0143 / 0.0142; unheld at 0.4, 0.0097 / 0.0274).
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

    # At the keyframes' 16x16, the resolution every frame CLIP embeds downstream has (D^t's and
    # ↑F's conditioning, `--image`): zero-shot digit accuracy on held-out frames ("a red 0" ...
    # "a red 9") 0.63, against 0.50 for the same CLIP at 32x32 and 0.36 for that one fed 16x16.
    # 3000 steps, not 1500: the CLIP was where the keyframes lost the digit. Zero-shot 0.63 ->
    # 0.77, a linear probe of its image embedding 0.76 -> 0.87 (4500 steps: 0.89); keyframes from
    # prompts (bench/prompt_fidelity.py, the prior and D^t retrained on it) digit 50% -> 61%.
    # Twice D^t's image phase or the prior's steps instead gained nothing (bench/README.md).
    c = clip.get_config("tiny")
    c.clip.update(image_size=KEYFRAME_RESOLUTION, patch_size=4)  # 16 patches, as 32 / 8
    c.data.update(data_dir=data_dir, resolution=KEYFRAME_RESOLUTION)
    _train(c, steps(2400), 64, 1e-3)
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
            # About 9.5 minutes here. bench/prompt_fidelity.py, 80 prompts, keyframes, the 3000-step
            # CLIP: 1200 / 2400 steps draw the prompt's digit in 61 / 67% of frames, the same digit
            # across a video 75 / 82%, colour 100% at both; 2400 at lr 2e-3, 63%. (1500-step CLIP,
            # twice the image phase: 600 steps, 36%. Width 32, lr 5e-4: 1500 steps 48%; 5000 steps,
            # on a GPU, 62-63%.) `--steps=keyframes_video=N` asks for more.
            _train(c, steps(1800), 16, 4e-3)
        else:
            # The decoder is where the digit was lost (bench/prompt_fidelity.py): at width 32, 820
            # steps x 48 drew the prompt's digit in 14% of images (chance 10%), 1640 x 48 in 33%.
            # At lr 3e-3 (width 16, then D^t as above) colour fell from 89% to 80%, digit as good.
            _train(c, steps(1640), 32, 1e-3)
        runs.append((f"keyframes_{phase}", c))

    # Conditioned on CLIP as D^t is (it starts with D^t's conditioning weights). Trained on clips
    # of 3 keyframes (7 frames), half the cost of 5 (13): twice the steps for the same time. The
    # frame positions are sinusoidal, so it samples the cascade's 13 frames all the same.
    # bench/interpolation_quality.py: held-out in-between MSE 0.040 -> 0.029 for the change.
    # At width 16, 800 steps at lr 2e-3 (160 s): MSE 0.0183, flicker 1.32; 400 at 1e-3: 0.0233,
    # 1.48 (width 32, 400 at 1e-3, 177 s: 0.0216, 1.40).
    c = interpolation.get_config("tiny")
    c.init_from, c.clip_from = f"{exports}/keyframes", f"{exports}/clip"
    # Animating an image: from a copy of it at 0.1, the video stood still; moved 0.5 px a frame
    # (real clips' digits: 0.68 at 16x16), it drifts.
    c.diffusion.update(
        start_strength=INTERPOLATION_START, start_follows_motion=True, animation_speed=0.5
    )
    c.unet.update(UNET)
    c.data.update(
        data_dir=data_dir, resolution=KEYFRAME_RESOLUTION, num_keyframes=3, keyframe_skip=3
    )
    _train(c, steps(640), 8, 2e-3)
    runs.append(("interpolation", c))

    # No attention (as the SR configs), and trained on native-pixel patches of half the frame:
    # about 4x cheaper a step than whole frames, so 900 steps fit, enough to learn to follow the
    # low-resolution input at high noise. At lr 6e-3, not 1e-3 (bench/sr_quality.py, held-out,
    # from pure noise): SR_h MSE 0.0232 -> 0.0026, SR^t_l 0.0336 -> 0.0176 (bilinear upsampling
    # 0.0074, 0.0143); 3e-3 gave 0.0075 and 0.0212, 1e-2 SR_h 0.0043.
    sr_unet = {**UNET, "embedding_dim": 0, "attention_levels": ()}
    c = sr_low.get_config("tiny")
    c.unet.update(sr_unet)
    c.diffusion.update(start_strength=SR_START, low_res_consistency=SR_HELD)
    c.data.update(data_dir=data_dir, resolution=32, crop=16, factor=2, num_frames=4)
    _train(c, steps(600), 16, 6e-3)
    runs.append(("sr_low", c))

    c = sr_high.get_config("tiny")
    c.unet.update(sr_unet)
    c.diffusion.update(start_strength=SR_START, low_res_consistency=SR_HELD)
    c.data.update(
        dataset="moving_digits/tiny64", data_dir=data_dir, resolution=64, crop=32, factor=2
    )
    _train(c, steps(600), 16, 6e-3)
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
