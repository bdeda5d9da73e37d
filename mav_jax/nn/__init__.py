"""Neural network modules: pseudo-3D layers and the shared spatio-temporal U-Net."""

from mav_jax.nn.pseudo3d import MultiHeadAttention, Pseudo3DAttention, Pseudo3DConv
from mav_jax.nn.transplant import new_parameter_paths, transplant_spatial_params
from mav_jax.nn.unet import SpatioTemporalUNet, is_temporal_path, unet_denoise_fn
from mav_jax.nn.unet_config import UNetConfig

__all__ = [
    "MultiHeadAttention",
    "Pseudo3DAttention",
    "Pseudo3DConv",
    "SpatioTemporalUNet",
    "UNetConfig",
    "is_temporal_path",
    "new_parameter_paths",
    "transplant_spatial_params",
    "unet_denoise_fn",
]
