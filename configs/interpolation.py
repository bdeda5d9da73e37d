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
    config.init_from = ""  # the keyframe stage's video-phase workdir or export
    config.seed = 0
    config.unet = common.unet_config(variant)
    config.clip_from = ""
    config.unet.embedding_dim = 0 if tiny else 768  # as configs/keyframes.py
    config.diffusion = common.diffusion_config()
    # Correlation of the frames' initial noise at sampling (0: independent, as trained; 1: the
    # same noise for every frame). Mixed noise (Ge et al. 2023) makes frames agree on what
    # their own noise would otherwise pick at random, where the temporal layers do not.
    config.diffusion.frame_noise_correlation = 0.0
    # At every sampler step, set the given frames of x_t to their forward-noised values, as
    # training shows them (it noises the whole clip). Off, the frames between follow the sampler's
    # own version of the given frames. Quickstart, 32 held-out clips: in-between MSE 0.028 -> 0.024.
    config.diffusion.hold_given_frames = True
    # < 1: the frames to generate start from the linear blend of the given frames on either side,
    # forward-noised to where this fraction of the sampler's steps is left (SDEdit); the sampler
    # then runs those steps. 1: from pure noise, as the paper.
    config.diffusion.start_strength = 1.0
    # With a start < 1: the blend first moves each given frame along the translation between
    # them (phase correlation), so a moving object is carried across, not cross-faded.
    config.diffusion.start_follows_motion = False
    # With it: a single given frame (animation) starts moving this many pixels a frame, each video
    # in a random direction (frames past the last given one of several move on at their velocity).
    # 0: the frames start from its copy, so at a low start the video barely moves.
    config.diffusion.animation_speed = 0.0
    # The keyframes already carry most of the content: sample without guidance (1.0) by default.
    config.diffusion.guidance_scale = 1.0

    config.data = ml_collections.ConfigDict()
    config.data.dataset = "moving_digits/tiny" if tiny else "moving_digits/small"
    config.data.data_dir = ""
    config.data.video_split = "video"
    config.data.resolution = 32 if tiny else 64
    config.data.num_keyframes = 3 if tiny else 16
    config.data.keyframe_skip = 3 if tiny else 5  # tiny: 3 -> 7 frames; paper: 16 -> 76
    config.data.frame_skips = (1,)  # the frame skip of the interpolated clip in the source video
    config.data.mode_weights = (0.7, 0.15, 0.15)  # interpolate, extrapolate, animate
    config.data.flip = False
    config.data.worker_count = 0

    config.train = common.train_config(variant)
    config.mesh = common.mesh_config()
    config.evals = common.evals_config(variant)
    return config
