"""python -m mav_jax.sample --checkpoints=DIR --prompt="a red 3 moving left" --output=out.mp4

Runs the whole cascade (`mav_jax.cascade`) from `DIR/<stage>` exports and writes, per video,
OUT.mp4, OUT.gif and OUT.png (a contact sheet of frames); with several prompts (repeated --prompt
or --prompts_file, one per line) the files are OUT_000.mp4, OUT_001.mp4, ... `--keep_stages` also
writes every stage's output (OUT.keyframes.mp4, OUT.interpolation.mp4, ...).

Other modes of the paper:
    --image=photo.png               animate an image (↑F from its first frame, then SR)
    --video=clip.mp4 --mode=interpolate|extrapolate   fill in or extend a video (↑F, then SR)
    --video=clip.mp4 --mode=variations --num_videos=4  new videos like a given one
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

_CHECKPOINTS = flags.DEFINE_string("checkpoints", None, "Directory with one export per stage.")
_PROMPTS = flags.DEFINE_multi_string("prompt", [], "Text prompt (repeat for several videos).")
_PROMPTS_FILE = flags.DEFINE_string("prompts_file", "", "A file of prompts, one per line.")
_IMAGE = flags.DEFINE_string("image", "", "Animate this image instead of following a prompt.")
_VIDEO = flags.DEFINE_string("video", "", "Start from this video (see --mode).")
_MODE = flags.DEFINE_enum(
    "mode", "interpolate", ["interpolate", "extrapolate", "variations"], "What to do with --video."
)
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 1, "Videos per prompt (or variations).")
_OUTPUT = flags.DEFINE_string("output", "sample.mp4", "Output path (.mp4); .gif/.png beside it.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed: the same seed gives the same videos.")
# Sampling options: each left unset takes the stage config's value (stages.sampling).
_STEPS = flags.DEFINE_integer("steps", None, "Sampler steps per stage.")
_PRIOR_GUIDANCE = flags.DEFINE_float("prior_guidance", None, "Prior guidance scale.")
_GUIDANCE = flags.DEFINE_float("guidance", None, "Keyframe guidance scale.")
_SAMPLER = flags.DEFINE_enum("sampler", None, ["ddim", "ddpm"], "Sampler of every stage.")
_NOISE_CORRELATION = flags.DEFINE_float(
    "frame_noise_correlation",
    None,
    "Correlation of the frames' initial noise in the keyframe and interpolation stages, 0-1.",
)
_NOISE_DRIFT = flags.DEFINE_float(
    "frame_noise_drift",
    None,
    "Pixels a frame that the keyframes' shared noise drifts, each video in a random direction: "
    "a steady drift to follow (0: none).",
)
_STEADY_MOTION = flags.DEFINE_float(
    "steady_motion_strength",
    None,
    "Keyframes sampled twice: the second pass from the first's middle keyframe moved at the "
    "first's velocity (the drift's where the first left the digit in place), noised, with this "
    "fraction (0-1) of the sampler steps left, so the digit keeps one shape and one speed (0: one "
    "pass).",
)
_CANDIDATES = flags.DEFINE_integer(
    "keyframe_candidates",
    None,
    "Keyframe videos to draw per prompt, keeping the one whose middle keyframe CLIP embeds closest "
    "to the prompt's embedding; each costs a keyframe sampling.",
)
_START_STRENGTH = flags.DEFINE_float(
    "start_strength",
    None,
    "Interpolation and super-resolution start from a guess (the keyframes' linear blend, the "
    "upsampled input), noised, with this fraction (0-1] of their sampler steps left; 1: from pure "
    "noise.",
)
_LOW_RES_CONSISTENCY = flags.DEFINE_float(
    "low_res_consistency",
    None,
    "Super-resolution holds each step's prediction to its input: this fraction (0-1) of the "
    "way, each block's mean to the input pixel it downsamples to.",
)
_PLAIN = flags.DEFINE_bool(
    "plain",
    False,
    "Sample as the paper does, every sampling aid off (overrides the flags above): one keyframe "
    "pass from independent frame noise, one candidate, interpolation and super-resolution from "
    "pure noise, no hold to the low-resolution input.",
)
_FPS = flags.DEFINE_float("fps", None, "Output frame rate (default: the interpolation's highest).")
_UNTIL = flags.DEFINE_enum(
    "until", "sr_high", ["keyframes", "interpolation", "sr_low", "sr_high"], "Last stage to run."
)
_KEEP_STAGES = flags.DEFINE_bool("keep_stages", False, "Also write every stage's output.")
_MESH = flags.DEFINE_string("mesh", "", "Mesh, AXIS:SIZE[,...]; empty: every device on 'data'.")


def read_prompts(prompts: list[str], prompts_file: str) -> list[str]:
    found = list(prompts)
    if prompts_file:
        with open(prompts_file, encoding="utf-8") as f:
            found += [line.strip() for line in f if line.strip()]
    return found


def main(argv) -> None:
    del argv
    from mav_jax import cli_logging
    from mav_jax.cascade import ORDER, Cascade, CascadeError
    from mav_jax.data import files
    from mav_jax.data.video_io import load_frames, write_outputs
    from mav_jax.models.tokenizer import PromptTooLongError
    from mav_jax.parallel.sharding import make_mesh, parse_mesh
    from mav_jax.stages import to_uint8
    from mav_jax.stages.sampling import SamplingOptions

    cli_logging.setup()
    if not _CHECKPOINTS.value:
        raise app.UsageError("--checkpoints=DIR is required (one export per stage in DIR/<stage>).")
    prompts = read_prompts(_PROMPTS.value, _PROMPTS_FILE.value)
    modes = sum(bool(x) for x in (prompts, _IMAGE.value, _VIDEO.value))
    if modes != 1:
        raise app.UsageError("Give exactly one of --prompt/--prompts_file, --image or --video.")
    until = ORDER.index(_UNTIL.value) + 1
    frames_only = _IMAGE.value or (_VIDEO.value and _MODE.value != "variations")
    # From given frames the prior and keyframes are skipped; the CLIP still embeds a given frame
    # for a conditioned ↑F (Cascade.load says so if it is needed and missing).
    has_clip = files.exists(os.path.join(_CHECKPOINTS.value, "clip"))
    needed = (("clip",) if has_clip else ()) + ORDER[3:until] if frames_only else ORDER[:until]
    if frames_only and _UNTIL.value == "keyframes":
        raise app.UsageError(
            "--image/--video start at the interpolation stage; --until must be later."
        )
    options = SamplingOptions(
        seed=_SEED.value,
        steps=_STEPS.value,
        fps=_FPS.value,
        prior_guidance=_PRIOR_GUIDANCE.value,
        guidance=_GUIDANCE.value,
        frame_noise_correlation=_NOISE_CORRELATION.value,
        frame_noise_drift=_NOISE_DRIFT.value,
        steady_motion_strength=_STEADY_MOTION.value,
        keyframe_candidates=_CANDIDATES.value,
        start_strength=_START_STRENGTH.value,
        low_res_consistency=_LOW_RES_CONSISTENCY.value,
        sampler=_SAMPLER.value,
    )
    if _PLAIN.value:
        options = options.plain()
    try:
        mesh = make_mesh(parse_mesh(_MESH.value) or {"data": -1})
        cascade = Cascade.load(_CHECKPOINTS.value, mesh, needed)
        if prompts:
            prompts = [p for p in prompts for _ in range(_NUM_VIDEOS.value)]
            outputs = cascade.text_to_video(prompts, options)
        elif _IMAGE.value:
            size = cascade.stages["interpolation"].stage.resolution
            outputs = cascade.from_frames(load_frames(_IMAGE.value, size), "animate", options)
        elif _MODE.value == "variations":
            size = cascade.stages["keyframes"].stage.resolution
            video = load_frames(_VIDEO.value, size)
            outputs = cascade.variations(video, options, count=_NUM_VIDEOS.value)
        else:
            size = cascade.stages["interpolation"].stage.resolution
            outputs = cascade.from_frames(load_frames(_VIDEO.value, size), _MODE.value, options)
    except (CascadeError, PromptTooLongError, FileNotFoundError, ValueError) as error:
        sys.exit(f"mav_jax.sample: {error}")

    stem, _ = os.path.splitext(_OUTPUT.value)
    if os.path.dirname(stem):
        os.makedirs(os.path.dirname(stem), exist_ok=True)
    final = list(outputs)[-1]
    captions = []  # what mav_jax.clipsim reads back: {"video": FILE, "caption": PROMPT}
    for name, videos in outputs.items():
        if name != final and not _KEEP_STAGES.value:
            continue
        videos = to_uint8(videos)
        rate = cascade.fps_of(name, options)
        for i, video in enumerate(videos):
            prefix = stem if len(videos) == 1 else f"{stem}_{i:03d}"
            if name != final:
                prefix += f".{name}"
            written = write_outputs(prefix, video, rate)
            if prompts and name == final:
                captions.append({"video": os.path.basename(written[0]), "caption": prompts[i]})
            logging.info("%s: %s (%d frames, %dx%d)", name, written[0], *video.shape[:3])
    if captions:
        with open(os.path.join(os.path.dirname(stem) or ".", "captions.jsonl"), "w") as f:
            f.writelines(json.dumps(entry) + "\n" for entry in captions)


def cli() -> None:
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    cli()
