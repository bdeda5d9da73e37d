"""Sampling-drift check for the quickstart's keyframe decoder: one-step denoising error on real
frames at several noise levels, against the statistics of DDIM samples from noise.

    python bench/sampling_drift.py runs/quickstart

Measured on this CPU, both decoders trained on the quickstart's data and CLIP:

| keyframe decoder D | x0 MSE at t = 50 / 300 / 600 / 900 | DDIM sample mean (data: -0.79) |
|---|---|---|
| eps-prediction, 1,200 steps x 64 | 0.001 / 0.011 / 0.045 / 0.39 | -0.15 (20 and 100 steps) |
| v-prediction, 600 steps x 64 | 0.001 / 0.014 / 0.042 / 0.081 | -0.76 (20 and 100 steps) |

With eps the x0 implied at high noise is the network's error divided by alpha_t (5e-5 at the
cosine schedule's last step), clipped to +-1: the sampler commits to a saturated colour field in
its first steps. v-prediction (now every U-Net stage's default) predicts x0 directly there.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(workdir: str) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import tensorflow_datasets as tfds

    sys.path.insert(0, str(ROOT))
    from mav_jax.diffusion import ddim_sample
    from mav_jax.diffusion.objectives import predict_x0_and_eps
    from mav_jax.diffusion.schedules import q_sample
    from mav_jax.models.clip import unit
    from mav_jax.models.frozen_clip import FrozenClip
    from mav_jax.nn import unet_denoise_fn
    from mav_jax.parallel import make_mesh
    from mav_jax.stages import stage_from_config
    from mav_jax.train.weights import load_inference

    mesh = make_mesh({"data": 1})
    config, graphdef, params = load_inference(f"{workdir}/checkpoints/keyframes_image", mesh)
    stage = stage_from_config(config)
    clip = FrozenClip(f"{workdir}/checkpoints/clip", mesh)
    data = tfds.data_source("moving_digits/tiny", split="image_text", data_dir=f"{workdir}/data")
    frames = np.stack([np.asarray(data[i]["video"][0]) for i in range(8)]) / 127.5 - 1.0
    size = stage.resolution
    images = jax.image.resize(jnp.asarray(frames, jnp.float32), (8, size, size, 3), "bilinear")
    images = images[:, None]  # (B, 1, H, W, 3)
    print(f"data: mean {float(images.mean()):.3f}")
    cond = {"embedding": unit(clip.encode_image(images[:, 0]))}
    denoise = unet_denoise_fn(graphdef)
    for t in (50, 300, 600, 900):
        noise = jax.random.normal(jax.random.key(t), images.shape)
        steps = jnp.full((8,), t)
        x_t = q_sample(stage.schedule, images, steps, noise)
        abar = stage.schedule.alphas_cumprod[t]
        out = denoise(params, x_t, steps, cond)
        x0, _ = predict_x0_and_eps(stage.prediction, out, x_t, jnp.sqrt(abar), jnp.sqrt(1 - abar))
        print(f"t={t}: one-step x0 MSE {float(jnp.mean((x0 - images) ** 2)):.4f}")
    x_T = jax.random.normal(jax.random.key(0), images.shape)
    for num_steps in (20, 100):
        samples = ddim_sample(
            denoise,
            params,
            x_T,
            jax.random.key(1),
            stage.schedule,
            cond,
            num_steps=num_steps,
            prediction=stage.prediction,
        )
        print(
            f"DDIM {num_steps} steps: sample mean {float(samples.mean()):.3f}, "
            f"saturated {float((jnp.abs(samples) > 0.99).mean()):.3f}"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "runs/quickstart"))
