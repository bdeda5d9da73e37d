"""SR_h: spatial super-resolution (temporal layers off, trained on images), 256 -> 768 in the
paper; at sampling every frame starts from the same noise.

    python -m mav_jax.train --config=configs/sr_high.py:tiny --workdir=runs/sr_high
"""

from mav_jax.configs.super_resolution import sr_config


def get_config(variant: str = "tiny"):
    if (variant or "tiny") == "tiny":
        return sr_config("sr_high", "tiny", resolution=32, factor=2)
    return sr_config("sr_high", variant, resolution=768, factor=3)
