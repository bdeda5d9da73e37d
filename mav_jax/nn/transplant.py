"""Load image-model weights into the video model (Make-A-Video's T2I -> T2V step).

The video U-Net keeps every spatial parameter at the path the image U-Net uses, so the transplant
is a path-by-path copy; the only parameters left untouched are the temporal ones, which keep their
identity initialisation.
"""

from __future__ import annotations

import jax
from flax import nnx

from mav_jax.nn.unet import is_temporal_path


def _paths(state: nnx.State) -> dict[tuple, jax.Array]:
    return {tuple(str(getattr(p, "key", p)) for p in path): leaf for path, leaf in nnx.to_flat_state(state)}


def new_parameter_paths(image_model: nnx.Module, video_model: nnx.Module) -> set[tuple[str, ...]]:
    """Paths of parameters that exist in the video model but not in the image model."""
    image = _paths(nnx.state(image_model, nnx.Param))
    video = _paths(nnx.state(video_model, nnx.Param))
    return set(video) - set(image)


def transplant_spatial_params(image_state: nnx.State, video_model: nnx.Module) -> set[tuple[str, ...]]:
    """Copy every parameter of `image_state` into `video_model` (in place).

    Returns the paths that were not overwritten (the temporal ones). Raises if the image state has
    a parameter the video model lacks or with another shape, or if a non-temporal video parameter
    would be left uninitialised: those mean the two configs differ in more than `temporal`.
    """
    image = _paths(image_state)
    video_state = nnx.state(video_model, nnx.Param)
    video = _paths(video_state)
    missing = sorted(set(image) - set(video))
    if missing:
        raise ValueError(f"Image parameters absent from the video model: {missing[:5]} ...")
    mismatched = [p for p in image if jax.numpy.shape(image[p]) != jax.numpy.shape(video[p])]
    if mismatched:
        raise ValueError(
            f"Shape mismatch at {mismatched[:5]}: the image and video U-Net configs must agree on "
            "every field except `temporal` and `fps_conditioning`."
        )
    untouched = set(video) - set(image)
    not_temporal = sorted(p for p in untouched if not is_temporal_path(p))
    if not_temporal:
        raise ValueError(f"Non-temporal video parameters have no image counterpart: {not_temporal}.")

    flat = []
    for path, var in nnx.to_flat_state(video_state):
        key = tuple(str(getattr(p, "key", p)) for p in path)
        if key in image:
            var = var.replace(value=image[key].get_value() if isinstance(image[key], nnx.Variable) else image[key])
        flat.append((path, var))
    nnx.update(video_model, nnx.from_flat_state(flat))
    return untouched
