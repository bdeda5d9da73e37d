"""How well ↑F fills in held-out clips from their keyframes, against two baselines that need no
model: copying the nearest keyframe, and blending the two neighbouring keyframes linearly.

For each held-out clip of the dataset's `eval` split (at the stage's resolution and frame count),
↑F is given every keyframe_skip-th frame and the CLIP image embedding of the given frame nearest
the middle (as `Cascade.from_frames` does), and generates the rest. Reported, over the generated
frames only:

* mse: mean squared error against the true frames (pixels in [-1, 1]);
* flicker: mean squared difference between consecutive frames of the whole clip, over the true
  clip's (a smooth interpolation is near 1; frames that jump in colour or shape push it up);
* colour error: mean absolute difference of each generated frame's mean RGB from the true one's.

Each ↑F runs as it samples (holding the given frames at their forward-noised values at every
sampler step), without that hold, so the table shows what the hold is worth, and from every start
in --starts (the frames between keyframes start from their linear blend, noised, with that
fraction of the sampler steps left; 1: from pure noise).

    python bench/interpolation_quality.py --checkpoints=runs/quickstart/checkpoints \
        [--interpolation=OTHER_EXPORT ...] [--clips=32] [--steps=50] [--starts=1,0.7,0.5,0.3]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys

import numpy as np
from held_out import ROOT, add_arguments, data_dir_of, held_out_records, number_list, write_results


def held_out_clips(stage, dataset: str, data_dir: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, F, H, W, 3) clips in [-1, 1] and their (N,) fps, through the stage's own transforms
    (the frame mask it draws is replaced by the interpolation mask)."""
    records = held_out_records(stage.operations(), dataset, data_dir, count)
    return np.stack([r["video"] for r in records]), np.stack([r["fps"] for r in records])


def baselines(video: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Nearest-keyframe copy, and the given frames' blends that ↑F can start from (`blend_given`):
    linear, and moved along the keyframes' translation. (N, F, H, W, 3) each."""
    import jax.numpy as jnp

    from mav_jax.stages.interpolation import blend_given

    given = np.flatnonzero(mask)
    nearest = video[:, given[np.abs(np.arange(len(mask))[:, None] - given).argmin(axis=1)]]
    masks = jnp.broadcast_to(jnp.asarray(mask), video.shape[:2])
    return {
        "nearest keyframe": nearest,
        "linear blend": np.asarray(blend_given(jnp.asarray(video), masks)),
        "motion-compensated blend": np.asarray(blend_given(jnp.asarray(video), masks, True)),
    }


def scores(out: np.ndarray, truth: np.ndarray, generated: np.ndarray) -> dict[str, float]:
    """`generated` (F,) bool marks the frames ↑F made."""
    steps = lambda v: np.mean(np.diff(v, axis=1) ** 2)  # noqa: E731
    colour = np.abs(out.mean(axis=(2, 3)) - truth.mean(axis=(2, 3)))[:, generated]
    return {
        "mse": float(np.mean((out - truth)[:, generated] ** 2)),
        "flicker": float(steps(out) / steps(truth)),
        "colour_error": float(colour.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, clips=32, json_name="interpolation_quality.json")
    parser.add_argument(
        "--interpolation",
        action="append",
        default=[],
        help="↑F exports or workdirs to compare (default: CHECKPOINTS/interpolation)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    import jax
    import jax.numpy as jnp

    from mav_jax.models.clip import unit
    from mav_jax.models.frozen_clip import FrozenClip
    from mav_jax.parallel import make_mesh
    from mav_jax.stages import stage_from_config
    from mav_jax.stages.frame_modes import frame_mask
    from mav_jax.train.weights import load_weights

    mesh = make_mesh({"data": -1})
    data = data_dir_of(args)
    clip = FrozenClip(os.path.join(args.checkpoints, "clip"), mesh)
    paths = args.interpolation or [os.path.join(args.checkpoints, "interpolation")]
    results, truth = {}, None
    for path in paths:
        config, graphdef, params = load_weights(path, mesh)
        stage = stage_from_config(config)
        if truth is None:
            truth, fps = held_out_clips(stage, config.data.dataset, data, args.clips)
            mask = frame_mask("interpolate", truth.shape[1], stage.keyframe_skip)
            generated = mask == 0
            for name, out in baselines(truth, mask).items():
                results[name] = scores(out, truth, generated)
            nearest = int(
                np.argmin(
                    np.where(mask > 0, np.abs(np.arange(len(mask)) - len(mask) // 2), len(mask))
                )
            )
            embedding = unit(clip.encode_image(jnp.asarray(truth[:, nearest])))
        masks = jnp.broadcast_to(jnp.asarray(mask), (truth.shape[0], len(mask)))
        video = jnp.where(masks[:, :, None, None, None] > 0, jnp.asarray(truth), 0.0)
        label = f"↑F {path} ({'CLIP-conditioned' if stage.unet.embedding_dim else 'unconditioned'})"
        starts = number_list(args.starts, stage.start_strength)
        variants = {}
        for start in starts:
            for follows in (False, True) if start < 1 else (False,):
                guess = ", motion-compensated" if follows else ""
                variants[f"{label}, start {start:g}{guess}"] = dataclasses.replace(
                    stage, start_strength=start, start_follows_motion=follows
                )
        guess = ", motion-compensated" if stage.start_follows_motion and starts[0] < 1 else ""
        variants[f"{label}, start {starts[0]:g}{guess}, given frames not held"] = (
            dataclasses.replace(stage, start_strength=starts[0], hold_given_frames=False)
        )
        for name, variant in variants.items():
            generate = jax.jit(functools.partial(variant.generate, graphdef, num_steps=args.steps))
            out = generate(
                params,
                jax.random.key(0),
                video,
                masks,
                jnp.asarray(fps),
                embedding=embedding if stage.unet.embedding_dim else None,
            )
            results[name] = scores(np.asarray(out), truth, generated)

    print(
        f"{len(truth)} held-out clips of {truth.shape[1]} frames at {truth.shape[2]}x{truth.shape[3]}, "
        f"{args.steps} sampler steps\n"
    )
    print(f"| {'':60s} | mse | flicker (truth = 1) | colour error |\n|---|---|---|---|")
    for name, s in results.items():
        print(f"| {name:60s} | {s['mse']:.4f} | {s['flicker']:.2f} | {s['colour_error']:.4f} |")
    write_results(args.json, len(truth), args.steps, results)


if __name__ == "__main__":
    main()
