"""CLIP: text and image towers trained contrastively on the image-text split.

    python -m mav_jax.train --config=configs/clip.py:tiny --workdir=runs/clip
    python -m mav_jax.export --workdir=runs/clip --output=exports/clip

`tiny` is a 2-layer, 128-wide pair with the Moving Digits tokenizer, for tests and the CPU cascade.
`paper` is OpenAI's ViT-L/14 shape (the paper uses OpenAI's pretrained CLIP: convert it with
`python -m mav_jax.models.clip_convert` rather than training this from scratch).
"""

import ml_collections

from mav_jax.configs import common


def clip_model_config(variant: str) -> ml_collections.ConfigDict:
    """Keys are exactly `mav_jax.models.clip.ClipConfig`'s fields."""
    if common.check_variant(variant) == "tiny":
        return ml_collections.ConfigDict(
            dict(
                embed_dim=64,
                image_size=32,
                patch_size=8,
                vision_width=128,
                vision_layers=2,
                vision_heads=2,
                context_length=24,
                vocab_size=0,
                text_width=128,
                text_layers=2,
                text_heads=2,
                activation="quick_gelu",
                remat="none",  # What backward keeps of each block: none, full, save_dots, offload.
                scan_blocks=False,  # Run each tower's blocks as one lax.scan.
                attention_impl="auto",  # Attention kernel: auto, xla, splash (TPU) or cudnn (GPU).
            )
        )
    return ml_collections.ConfigDict(
        dict(  # ViT-L/14 at 224
            embed_dim=768,
            image_size=224,
            patch_size=14,
            vision_width=1024,
            vision_layers=24,
            vision_heads=16,
            context_length=77,
            vocab_size=49408,
            text_width=768,
            text_layers=12,
            text_heads=12,
            activation="quick_gelu",
            remat="full",
            scan_blocks=True,
            attention_impl="auto",
        )
    )


def tokenizer_spec(variant: str) -> str:
    """'digits' (BPE over the embedded set's captions), a tokenizer.json, or OpenAI's
    bpe_simple_vocab_16e6.txt.gz (a local file; nothing is downloaded)."""
    return "digits" if common.check_variant(variant) == "tiny" else "bpe_simple_vocab_16e6.txt.gz"


def image_text_data(variant: str) -> ml_collections.ConfigDict:
    """The captioned-image data the CLIP and prior stages train on."""
    tiny = common.check_variant(variant) == "tiny"
    return ml_collections.ConfigDict(
        dict(
            dataset="moving_digits/tiny" if tiny else "moving_digits/small",
            data_dir="",
            split="image_text",
            resolution=32 if tiny else 64,
            worker_count=0,
        )
    )


def get_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    variant = common.check_variant(variant)
    tiny = variant == "tiny"
    config = ml_collections.ConfigDict()
    config.stage = "clip"
    config.variant = variant
    config.seed = 0
    config.clip = clip_model_config(variant)
    config.clip_tokenizer = tokenizer_spec(variant)
    config.data = image_text_data(variant)

    config.train = common.train_config(variant)
    config.train.learning_rate = 5e-4
    config.train.weight_decay = 0.0 if tiny else 0.2  # AdamW weight decay.
    config.train.global_batch_size = 32 if tiny else 32768
    config.train.num_samples = 0  # Sample videos: none (CLIP's accuracy is logged instead).
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant, "retrieval")
    return config
