"""mav_jax: Make-A-Video (text-to-video by a cascade of diffusion models) in JAX/Flax NNX.

Layers, each importing only those below it (tests/test_layers.py holds them to it):

* `nn`, `diffusion`, `data`, `parallel`, `exports`, `configs`: pseudo-3D layers and the shared
  U-Net; schedules, objectives, samplers, guidance; TFDS builders and Grain pipelines; logical
  axes and meshes; the inference export format; the stage configs.
* `models`: CLIP, the prior, I3D (FVD's feature network), the tokenizer.
* `stages` (one per cascade stage: data -> loss, samples) and `eval` (FVD, CLIPSIM).
* `train`: the trainer, optimiser and EMA, checkpoints, weights and export, evaluators.
* `cascade`, `plan` and `plan_tpu`, then the command-line tools (`sample`, `quickstart`, `export`, `fvd`,
  `clipsim`, `train.__main__`, `data.build`).
"""

__version__ = "0.1.0"
