"""How well SR^t_l and SR_h restore held-out frames from their low-resolution versions, against
bilinear upsampling, which needs no model.

For each SR export, the held-out clips (SR^t_l) or frames (SR_h) of its dataset's `eval` split go
through the stage's own transforms on whole frames (not the training patches): the target and the
low-resolution input the stage is trained on. The stage upscales the input from every start in
--starts (1: from pure noise, as the paper; s < 1: from the bilinear upsampling, forward-noised,
with that fraction of the sampler steps left), and with every weight in --consistency of
`diffusion.low_res_consistency` (each step's prediction held to the input; 0: not). Reported:

* mse: mean squared error against the true frames (pixels in [-1, 1]);
* colour error: mean absolute error of each pixel's chroma (its RGB less its own mean), the
  off-colour speckle a model invents where the truth is grey or one colour;
* flicker (SR^t_l only): mean squared difference between consecutive frames, over the true clip's.

    python bench/sr_quality.py --checkpoints=runs/quickstart/checkpoints [--stages=sr_low,sr_high]
        [--clips=16] [--steps=50] [--starts=1,0.6,0.4,0.2] [--consistency=0,0.5,1]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import os
import sys

import numpy as np
from held_out import ROOT, add_arguments, data_dir_of, held_out_records, number_list, write_results


def held_out_pairs(stage, dataset: str, data_dir: str, count: int):
    """(targets (N, F, H, W, 3), low-res inputs (N, F, h, w, 3), fps (N,)) in [-1, 1]."""
    whole_frames = dataclasses.replace(stage, crop=0).operations()
    records = held_out_records(whole_frames, dataset, data_dir, count)
    target = np.stack([r["video"] for r in records])
    low = np.stack([r["low_res"] for r in records])
    return target, low, np.asarray([r.get("fps", 24.0) for r in records], np.float32)


def scores(out: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    chroma = lambda v: v - v.mean(axis=-1, keepdims=True)  # noqa: E731
    result = {
        "mse": float(np.mean((out - truth) ** 2)),
        "colour_error": float(np.mean(np.abs(chroma(out) - chroma(truth)))),
    }
    if truth.shape[1] > 1:
        steps = lambda v: np.mean(np.diff(v, axis=1) ** 2)  # noqa: E731
        result["flicker"] = float(steps(out) / steps(truth))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, clips=16, json_name="sr_quality.json")
    parser.add_argument("--stages", default="sr_low,sr_high")
    parser.add_argument(
        "--consistency",
        default="",
        help="comma-separated low_res_consistency weights to compare (default: each config's)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    import jax
    import jax.numpy as jnp

    from mav_jax.parallel import make_mesh
    from mav_jax.stages import stage_from_config
    from mav_jax.stages.conditioned import upsample
    from mav_jax.train.weights import load_weights

    mesh = make_mesh({"data": -1})
    data = data_dir_of(args)
    results = {}
    for name in args.stages.split(","):
        config, graphdef, params = load_weights(os.path.join(args.checkpoints, name), mesh)
        stage = stage_from_config(config)
        truth, low, fps = held_out_pairs(stage, config.data.dataset, data, args.clips)
        results[f"{name}: bilinear"] = scores(
            np.asarray(upsample(jnp.asarray(low), truth.shape[2])), truth
        )
        for start, held in itertools.product(
            number_list(args.starts, stage.start_strength),
            number_list(args.consistency, stage.low_res_consistency),
        ):
            variant = dataclasses.replace(stage, start_strength=start, low_res_consistency=held)
            upscale = jax.jit(functools.partial(variant.upscale, graphdef, num_steps=args.steps))
            out = upscale(
                params,
                jax.random.key(0),
                jnp.asarray(low),
                jnp.asarray(fps) if stage.unet.fps_conditioning else None,
            )
            results[f"{name}: start {start:g}, held {held:g}"] = scores(np.asarray(out), truth)
        print(
            f"{name}: {len(truth)} held-out clips of {truth.shape[1]} frames, "
            f"{low.shape[2]} -> {truth.shape[2]}"
        )

    print(f"\n{args.steps} sampler steps\n")
    print(f"| {'':34s} | mse | colour error | flicker (truth = 1) |\n|---|---|---|---|")
    for name, s in results.items():
        flicker = f"{s['flicker']:.2f}" if "flicker" in s else "-"
        print(f"| {name:34s} | {s['mse']:.4f} | {s['colour_error']:.4f} | {flicker} |")
    write_results(args.json, args.clips, args.steps, results)


if __name__ == "__main__":
    main()
