"""mav_jax: Make-A-Video in JAX/Flax NNX.

Subpackages: `nn` (pseudo-3D layers and the shared U-Net), `diffusion` (schedules, objectives,
samplers, guidance), `parallel` (logical axis names and their mapping onto a device mesh).
"""

__version__ = "0.1.0"
