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
    config.phase = "image"  # Training phase: "image" (D) or "video" (D^t).
    config.init_from = ""  # Video phase: workdir or export of the image phase to start from.
    config.seed = 0

    config.unet = common.unet_config(variant)
    # CLIP export whose image embedding of a frame of each clip conditions the decoder.
    config.clip_from = ""
    # Width of that embedding (tiny CLIP: 64; ViT-L/14: 768); 0: unconditional (timestep, fps).
    config.unet.embedding_dim = 0 if tiny else 768
    config.diffusion = common.diffusion_config()
    # Correlation of the frames' initial noise at sampling (0: independent; 1: identical).
    config.diffusion.frame_noise_correlation = 0.0
    # Correlation of the frames' noise in the video phase's training loss (0: independent).
    config.diffusion.training_frame_noise_correlation = 0.0
    # Training: the shared part of the frames' noise follows each clip's own translation.
    config.diffusion.training_noise_follows_motion = False
    # Sampling: pixels a frame the shared noise drifts, in a random direction per video.
    config.diffusion.frame_noise_drift = 0.0
    # Sampling: fraction of steps left for a second, motion-steadied pass (0: one pass).
    config.diffusion.steady_motion_strength = 0.0
    # Sampling: keyframe videos drawn per prompt, keeping the one CLIP finds closest to it.
    config.diffusion.candidates = 1

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "moving_digits/tiny" if tiny else "moving_digits/small"
    config.data.data_dir = ""  # TFDS directory (empty: $TFDS_DATA_DIR, else ~/tensorflow_datasets).
    config.data.image_split = "image_text"
    config.data.video_split = "video"
    config.data.resolution = 32 if tiny else 64
    config.data.num_frames = 8 if tiny else 16  # Frames per clip in the video phase (image: 1).
    config.data.frame_skips = (1, 2, 3, 4)
    config.data.fps_distribution = "uniform"
    config.data.flip = False  # Random horizontal flips in training.
    config.data.worker_count = 0

    config.train = common.train_config(variant)
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant)
    return config
