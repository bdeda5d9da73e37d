"""Shared settings of the two super-resolution stages (`sr_low.py`, `sr_high.py`)."""

import ml_collections

from mav_jax.configs import common


def sr_config(stage: str, variant: str, resolution: int, factor: int) -> ml_collections.ConfigDict:
    variant = common.check_variant(variant)
    tiny = variant == "tiny"
    config = ml_collections.ConfigDict()
    config.stage = stage
    config.variant = variant
    config.init_from = ""
    config.seed = 0
    config.unet = common.unet_config(variant)
    config.unet.embedding_dim = 0
    # U-Net levels with self-attention: none in the upsamplers.
    config.unet.attention_levels = ()
    if not tiny:
        if stage == "sr_high":  # paper SR_h: narrower, with more resolution levels
            config.unet.update(
                base_channels=192, channel_mults=(1, 1, 2, 2, 4, 4), num_res_blocks=2
            )
    config.diffusion = common.diffusion_config()
    config.diffusion.max_aug_fraction = 0.2  # Training: low-res input noised at t_aug < this * T.
    config.diffusion.sample_aug_fraction = 0.1  # Sampling: low-res input noised at this * T.
    # Fraction of sampler steps left when starting from the upsampled input (1: pure noise).
    config.diffusion.start_strength = 1.0
    # Fraction of the way each step's prediction is moved to block-average to the low-res input.
    config.diffusion.low_res_consistency = 0.0

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "moving_digits/tiny" if tiny else "moving_digits/small"
    config.data.data_dir = ""
    config.data.image_split = "image_text"
    config.data.video_split = "video"
    config.data.resolution = resolution  # Output frame size; the input is resolution / factor.
    config.data.factor = factor
    config.data.crop = 0  # Size of the native-pixel training patches (0: whole frames).
    config.data.num_frames = 4 if tiny else 16  # Frames per clip (sr_low only; sr_high: images).
    config.data.frame_skips = (1, 2)
    config.data.flip = False
    config.data.worker_count = 0

    config.train = common.train_config(variant)
    config.train.tpu_compiler_options = "xla_tpu_scoped_vmem_limit_kib=8192"  # TPU compile flags.
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant)
    return config
