"""Load image-model weights into the video model (Make-A-Video's T2I -> T2V step).

The video U-Net keeps every spatial parameter at the path the image U-Net uses, so the transplant
is a path-by-path copy; the only parameters left untouched are the temporal ones (and the fps
embedding), which keep their identity / zero initialisation.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from mav_jax.nn.unet import is_embedding_path, is_temporal_path
from mav_jax.state_paths import Path, flat_params, path_key


def new_parameter_paths(image_model: nnx.Module, video_model: nnx.Module) -> set[Path]:
    """Paths of parameters that exist in the video model but not in the image model."""
    return set(flat_params(video_model)) - set(flat_params(image_model))


def _is_widened_input_kernel(path: Path, source: tuple, target: tuple) -> bool:
    """The input conv's kernel with more input channels (interpolation's masked frames, SR's
    low-res input) and otherwise the same shape."""
    return (
        path[0] == "input_conv"
        and path[-1] == "kernel"
        and len(source) == len(target)
        and source[:-2] == target[:-2]
        and source[-1] == target[-1]
        and source[-2] < target[-2]
    )


def transplant_spatial_params(
    image_state: nnx.State,
    video_model: nnx.Module,
    expand_input_channels: bool = False,
    drop_embedding_conditioning: bool = False,
) -> set[Path]:
    """Copy every parameter of `image_state` into `video_model` (in place).

    Returns the paths that were not overwritten (the temporal ones). Raises if the image state has
    a parameter the video model lacks or with another shape, or if a non-temporal video parameter
    would be left uninitialised: those mean the two configs differ in more than `temporal`.
    With `expand_input_channels` the input conv may take extra channels (a stage initialised from
    one with fewer inputs); their kernel slices start at zero. With `drop_embedding_conditioning`
    a source conditioned on the CLIP embedding may seed a target that is not (keyframes ->
    interpolation without CLIP): the source's embedding-conditioning parameters are left out.
    """
    image = flat_params(image_state)
    if drop_embedding_conditioning and not any(map(is_embedding_path, flat_params(video_model))):
        image = {p: v for p, v in image.items() if not is_embedding_path(p)}
    video_state = nnx.state(video_model, nnx.Param)
    video = flat_params(video_state)
    missing = sorted(set(image) - set(video))
    if missing:
        raise ValueError(f"Image parameters absent from the video model: {missing[:5]}.")
    widened = {
        p
        for p in image
        if expand_input_channels
        and _is_widened_input_kernel(
            p, jnp.shape(image[p].get_value()), jnp.shape(video[p].get_value())
        )
    }
    mismatched = [
        p
        for p in image
        if p not in widened and jnp.shape(image[p].get_value()) != jnp.shape(video[p].get_value())
    ]
    if mismatched:
        raise ValueError(
            f"Shape mismatch at {mismatched[:5]}: the image and video U-Net configs must agree on "
            "every field except `temporal` and `fps_conditioning`."
        )
    untouched = set(video) - set(image)
    not_temporal = sorted(p for p in untouched if not is_temporal_path(p))
    if not_temporal:
        raise ValueError(
            f"Non-temporal video parameters have no image counterpart: {not_temporal}."
        )

    def transplanted(key, var):
        value = image[key].get_value()
        if key in widened:  # new input channels start at zero: the model ignores them at first
            value = jnp.zeros_like(var.get_value()).at[..., : value.shape[-2], :].set(value)
        return var.replace(value=value)

    updated = [
        (path, transplanted(key, var) if (key := path_key(path)) in image else var)
        for path, var in nnx.to_flat_state(video_state)
    ]
    nnx.update(video_model, nnx.from_flat_state(updated))
    return untouched
