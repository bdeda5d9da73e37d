"""Shared config pieces: the U-Net and diffusion settings every stage config starts from.

Stage configs (`configs/<stage>.py`, `get_config(variant)`) copy these and override what differs.
Size variants: `tiny` (tests and this 2-core CPU), `paper` (the published scale).
"""

import ml_collections

VARIANTS = ("tiny", "paper")


def check_variant(variant: str) -> str:
    variant = variant or "tiny"
    if variant not in VARIANTS:
        raise ValueError(f"Unknown size variant '{variant}'; choose one of {VARIANTS}.")
    return variant


def unet_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    """Keys are exactly `mav_jax.nn.UNetConfig`'s fields (checked by UNetConfig.from_dict)."""
    variant = check_variant(variant)
    cfg = ml_collections.ConfigDict()
    cfg.in_channels = 3
    cfg.out_channels = 3
    cfg.extra_in_channels = 0
    cfg.temporal = True
    cfg.temporal_kernel_size = 3
    cfg.timestep_conditioning = True
    cfg.fps_conditioning = True
    cfg.noise_aug_conditioning = False
    cfg.num_context_tokens = 4
    cfg.null_embedding = "learned"
    cfg.remat = False
    if variant == "tiny":
        cfg.base_channels = 32
        cfg.channel_mults = (1, 2)
        cfg.num_res_blocks = 1
        cfg.attention_levels = (1,)
        cfg.num_heads = 2
        cfg.dropout = 0.0
        cfg.embedding_dim = 64
        cfg.dtype = "float32"
    else:  # unCLIP's 64x64 decoder scale (Ramesh et al. 2022): width 320, mults 1-2-3-4.
        cfg.base_channels = 320
        cfg.channel_mults = (1, 2, 3, 4)
        cfg.num_res_blocks = 3
        cfg.attention_levels = (1, 2, 3)
        cfg.num_heads = 8
        cfg.dropout = 0.1
        cfg.embedding_dim = 768
        cfg.dtype = "bfloat16"
        cfg.remat = True
    return cfg


def diffusion_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.schedule = "cosine"  # or "linear"
    cfg.num_timesteps = 1000
    cfg.prediction = "eps"  # "eps", "v" or "x0"
    cfg.condition_drop_rate = 0.1  # classifier-free guidance dropout at training
    cfg.sampler = "ddim"  # or "ddpm"
    cfg.sampling_steps = 50
    cfg.guidance_scale = 3.0
    return cfg
