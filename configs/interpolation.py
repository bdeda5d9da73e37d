"""Frame interpolation ↑F: K keyframes -> (K - 1) * k + 1 frames (16 -> 76 at k = 5 in the paper).

    python -m mav_jax.train --config=configs/interpolation.py:tiny --workdir=runs/interpolation \
        --config.init_from=runs/keyframes_video

Initialised from D^t (`init_from`): every weight is copied and the 4 new input channels (masked
frames + mask) start at zero. Trains interpolation, extrapolation and image animation at once.
Conditioned, as D^t, on the CLIP image embedding of the clip's middle frame when
`unet.embedding_dim` > 0 (then `clip_from` names the CLIP export D^t used): it tells ↑F what the
frames between the keyframes show, so in-between frames keep the digit and colour.
"""

import ml_collections

from mav_jax.configs import common


def get_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    variant = common.check_variant(variant)
    tiny = variant == "tiny"
    config = ml_collections.ConfigDict()
    config.stage = "interpolation"
    config.variant = variant
    config.init_from = ""  # The keyframe stage's video-phase workdir or export to start from.
    config.seed = 0
    config.unet = common.unet_config(variant)
    config.clip_from = ""
    config.unet.embedding_dim = 0 if tiny else 768  # CLIP embedding width, as configs/keyframes.py.
    if not tiny:  # Splash (on TPU) for the temporal attention over 76 frames too.
        config.unet.splash_min_tokens = 64
    config.diffusion = common.diffusion_config()
    # Correlation of the frames' initial noise at sampling (0: independent; 1: identical).
    config.diffusion.frame_noise_correlation = 0.0
    # Sampling: set the given frames of x_t to their forward-noised values at every step.
    config.diffusion.hold_given_frames = True
    # Fraction of sampler steps left when starting from the given frames' blend (1: pure noise).
    config.diffusion.start_strength = 1.0
    # With a start < 1: the blend moves each given frame along the translation between them.
    config.diffusion.start_follows_motion = False
    # With it: start speed of an animated single frame, pixels a frame in a random direction.
    config.diffusion.animation_speed = 0.0
    # Classifier-free guidance scale at sampling (1.0: no guidance).
    config.diffusion.guidance_scale = 1.0

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "moving_digits/tiny" if tiny else "moving_digits/small"
    config.data.data_dir = ""
    config.data.video_split = "video"
    config.data.resolution = 32 if tiny else 64
    config.data.num_keyframes = 3 if tiny else 16
    config.data.keyframe_skip = 3 if tiny else 5  # k: output frames per interval between keyframes.
    config.data.frame_skips = (1,)  # Frame skip of the interpolated clip in the source video.
    config.data.mode_weights = (0.7, 0.15, 0.15)  # Training mix: interpolate, extrapolate, animate.
    config.data.flip = False
    config.data.worker_count = 0

    config.train = common.train_config(variant)
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant)
    return config
