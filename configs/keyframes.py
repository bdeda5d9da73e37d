"""Keyframe decoder D (image phase) then D^t (video phase): 16 frames at 64x64 in the paper.

    python -m mav_jax.train --config=configs/keyframes.py:tiny --workdir=runs/kf_image
    python -m mav_jax.train --config=configs/keyframes.py:tiny --config.phase=video \
        --config.init_from=runs/kf_image --workdir=runs/kf_video

The image phase trains the U-Net with temporal layers off on one-frame clips; the video phase
builds the temporal layers (identity-initialised) and fps conditioning, copies every spatial weight
from `init_from` (a workdir or an exported checkpoint), and trains on clips of `num_frames`.
"""

import ml_collections

from mav_jax.configs import common


def get_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    variant = common.check_variant(variant)
    tiny = variant == "tiny"
    config = ml_collections.ConfigDict()
    config.stage = "keyframes"
    config.variant = variant
    config.phase = "image"  # "image" (D) or "video" (D^t)
    config.init_from = ""  # video phase: workdir or export of the image phase
    config.seed = 0

    config.unet = common.unet_config(variant)
    # Conditioning on the CLIP image embedding of a frame of each clip (what lets D^t learn from
    # unlabeled video): name a CLIP export and set embedding_dim to its width (tiny CLIP: 64;
    # ViT-L/14: 768). embedding_dim=0 trains an unconditional decoder (timestep and fps only).
    config.clip_from = ""
    config.unet.embedding_dim = 0 if tiny else 768
    config.diffusion = common.diffusion_config()
    # Correlation of the frames' initial noise at sampling (0: independent, as trained; 1: the
    # same noise for every frame). Mixed noise (Ge et al. 2023) makes frames agree on what
    # their own noise would otherwise pick at random, where the temporal layers do not.
    config.diffusion.frame_noise_correlation = 0.0
    # The same mixed noise in the video phase's training loss (PYoCo trains and samples with it);
    # 0: independent frames. At the quickstart's 150 video steps 0.8 did not help, nor 0.5 at 1200
    # (the digit moves as far as in real clips, but jerkily, and is drawn less often; bench README).
    config.diffusion.training_frame_noise_correlation = 0.0
    # Warped noise (Burgert et al. 2025; diffusion/frame_motion.py): in training, the shared part
    # of the frames' noise follows each clip's own translation; at sampling, it drifts this many
    # pixels a frame in a random direction per video. Both need the correlations above > 0.
    config.diffusion.training_noise_follows_motion = False
    config.diffusion.frame_noise_drift = 0.0
    # Sampling: > 0 samples the keyframes twice; the second pass starts from the first's middle
    # keyframe (the frame the CLIP embedding describes) moved at the first's own median velocity,
    # noised, with this fraction of the sampler's steps left (SDEdit), so the digit keeps one
    # shape and one speed across the keyframes. 0: one pass, as in the paper.
    config.diffusion.steady_motion_strength = 0.0
    # Sampling: draw this many keyframe videos per prompt and keep the one whose middle
    # keyframe CLIP embeds closest to the prompt's embedding (CLIP reranking). 1: one draw, as in
    # the paper.
    config.diffusion.candidates = 1

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "moving_digits/tiny" if tiny else "moving_digits/small"
    config.data.data_dir = ""  # empty: $TFDS_DATA_DIR, else ~/tensorflow_datasets
    config.data.image_split = "image_text"
    config.data.video_split = "video"
    config.data.resolution = 32 if tiny else 64
    config.data.num_frames = 8 if tiny else 16  # video phase; the image phase uses 1
    config.data.frame_skips = (1, 2, 3, 4)
    config.data.fps_distribution = "uniform"
    config.data.flip = False  # mirrored digits are not digits
    config.data.worker_count = 0

    config.train = common.train_config(variant)
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant)
    return config
