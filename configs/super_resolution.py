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
    # unCLIP's upsamplers (Ramesh et al. 2022, table 3) have no attention layers: at 256-768
    # pixels attention would dominate memory (and, in the tiny cascade, SR_h's sampling time).
    # SR^t_l mixes frames with its temporal convs.
    config.unet.attention_levels = ()
    if not tiny:
        if stage == "sr_high":  # the 256 -> 1024 upsampler's shape: narrower, deeper in scale
            config.unet.update(
                base_channels=192, channel_mults=(1, 1, 2, 2, 4, 4), num_res_blocks=2
            )
    config.diffusion = common.diffusion_config()
    config.diffusion.max_aug_fraction = 0.2  # training: low-res input noised at t_aug < 0.2 T
    config.diffusion.sample_aug_fraction = 0.1  # sampling: a fixed, moderate augmentation
    # < 1: sampling starts from the upsampled input, forward-noised to where this fraction of the
    # sampler's steps is left (SDEdit); 1: from pure noise, as the paper.
    config.diffusion.start_strength = 1.0
    # > 0: every sampler step's prediction is moved this fraction of the way to averaging, block
    # by block, to the low-res input (DDNM's range-space fix; diffusion/low_res_consistency.py).
    # 0, as the paper; the quickstart's tiny SR stages use 1.
    config.diffusion.low_res_consistency = 0.0

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "moving_digits/tiny" if tiny else "moving_digits/small"
    config.data.data_dir = ""
    config.data.image_split = "image_text"
    config.data.video_split = "video"
    config.data.resolution = resolution  # output size; the input is resolution / factor
    config.data.factor = factor
    config.data.crop = (
        0  # train on native-pixel patches of this size (0: whole frames); the cascade
    )
    # samples whole frames, which the attention-free U-Net allows (the trainer's own samples
    # upscale training batches, so they are patches too)
    config.data.num_frames = 4 if tiny else 16  # sr_low only; sr_high trains on images
    config.data.frame_skips = (1, 2)
    config.data.flip = False
    config.data.worker_count = 0

    config.train = common.train_config(variant)
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant)
    return config
