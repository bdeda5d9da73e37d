"""SR^t_l: spatiotemporal super-resolution (pseudo-3D), 64 -> 256 in the paper, on video.

    python -m mav_jax.train --config=configs/sr_low.py:tiny --workdir=runs/sr_low

The tiny variant upscales 16 -> 32 on Moving Digits; the paper variant reads 256x256 video
(a `video_collection` built at --frame_size=256: --config.data.dataset=video_collection/NAME).
"""

from mav_jax.configs.super_resolution import sr_config


def get_config(variant: str = "tiny"):
    if (variant or "tiny") == "tiny":
        return sr_config("sr_low", "tiny", resolution=32, factor=2)
    return sr_config("sr_low", variant, resolution=256, factor=4)
