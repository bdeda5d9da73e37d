"""The prior P: caption -> CLIP image embedding (unCLIP's transformer diffusion prior).

    python -m mav_jax.train --config=configs/prior.py:tiny --config.clip_from=exports/clip \
        --workdir=runs/prior

It trains on the image-text split with a frozen CLIP (`clip_from`, an export of the clip stage or a
converted OpenAI/OpenCLIP checkpoint), whose widths the prior's `embed_dim`, `text_width` and
`context_length` must match. `paper`: unCLIP's prior (width 2048, 24 layers, 32 heads) on ViT-L/14.
"""

import ml_collections

from mav_jax.configs import clip as clip_configs
from mav_jax.configs import common


def get_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    variant = common.check_variant(variant)
    tiny = variant == "tiny"
    clip = clip_configs.clip_model_config(variant)
    config = ml_collections.ConfigDict()
    config.stage = "prior"
    config.variant = variant
    config.seed = 0
    config.clip_from = ""  # CLIP export directory (required).
    config.clip_tokenizer = clip_configs.tokenizer_spec(variant)
    config.prior = ml_collections.ConfigDict(
        dict(
            embed_dim=clip.embed_dim,
            text_width=clip.text_width,
            context_length=clip.context_length,
            width=128 if tiny else 2048,
            depth=2 if tiny else 24,
            num_heads=2 if tiny else 32,
            dtype="float32" if tiny else "bfloat16",
            remat="none"
            if tiny
            else "full",  # What backward keeps: none, full, save_dots, offload.
            scan_blocks=not tiny,  # Run the transformer's blocks as one lax.scan.
            attention_impl="auto",  # Attention kernel: auto, xla, splash (TPU) or cudnn (GPU).
        )
    )
    config.diffusion = common.diffusion_config()
    config.diffusion.sampling_steps = 25 if tiny else 64  # Sampler steps for the prior.
    config.diffusion.guidance_scale = 2.0 if tiny else 4.0

    config.data = clip_configs.image_text_data(variant)

    config.train = common.train_config(variant)
    config.train.global_batch_size = 32 if tiny else 4096
    config.train.learning_rate = 5e-4 if tiny else 1.1e-4
    config.train.num_samples = 0  # Sample videos: none (the prior makes embeddings).
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant)
    return config
