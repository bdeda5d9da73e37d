"""I3D (Inception-v1 inflated to 3-D, Carreira & Zisserman 2017) in Flax NNX, for FVD.

Layer for layer the DeepMind kinetics-i3d network that the TF-Hub `i3d-kinetics-400` module (and so
the reference FVD) uses: TF 'SAME' padding, Sonnet-v1 batch norm (no scale, eps 1e-3) with running
statistics, convolutions at full float32 precision. Input `(B, T, 224, 224, 3)` in [-1, 1], T >= 9;
output the 400 Kinetics logits averaged over time, `(B, 400)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

NUM_CLASSES = 400
MIN_FRAMES = 9  # fewer leave no time step for the final 2-frame average pool
INPUT_SIZE = 224

# (name, input channels, [b0, b1a, b1b, b2a, b2b, b3b] output channels), in network order.
INCEPTION_BLOCKS = (
    ("mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


class Unit3D(nnx.Module):
    """Conv3d (no bias) -> batch norm (running stats, no scale) -> ReLU, as in kinetics-i3d."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        *,
        batch_norm: bool = True,
        activation: bool = True,
        rngs: nnx.Rngs,
    ):
        self.conv = nnx.Conv(
            in_features,
            out_features,
            kernel,
            strides=stride,
            padding="SAME",
            use_bias=not batch_norm,
            precision=jax.lax.Precision.HIGHEST,
            rngs=rngs,
        )
        self.bn = (
            nnx.BatchNorm(
                out_features, use_scale=False, epsilon=1e-3, use_running_average=True, rngs=rngs
            )
            if batch_norm
            else None
        )
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return jax.nn.relu(x) if self.activation else x


class InceptionModule(nnx.Module):
    """Four parallel branches (1x1; 1x1->3x3; 1x1->3x3; maxpool->1x1) concatenated on channels."""

    def __init__(self, in_features: int, widths: tuple[int, ...], *, rngs: nnx.Rngs):
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.branch_0 = Unit3D(in_features, b0, rngs=rngs)
        self.branch_1a = Unit3D(in_features, b1a, rngs=rngs)
        self.branch_1b = Unit3D(b1a, b1b, (3, 3, 3), rngs=rngs)
        self.branch_2a = Unit3D(in_features, b2a, rngs=rngs)
        self.branch_2b = Unit3D(b2a, b2b, (3, 3, 3), rngs=rngs)
        self.branch_3b = Unit3D(in_features, b3b, rngs=rngs)
        self.out_features = b0 + b1b + b2b + b3b

    def __call__(self, x: jax.Array) -> jax.Array:
        pooled = nnx.max_pool(x, (3, 3, 3), strides=(1, 1, 1), padding="SAME")
        return jnp.concatenate(
            [
                self.branch_0(x),
                self.branch_1b(self.branch_1a(x)),
                self.branch_2b(self.branch_2a(x)),
                self.branch_3b(pooled),
            ],
            axis=-1,
        )


class InceptionI3d(nnx.Module):
    """The Kinetics-400 I3D classifier; `__call__` returns time-averaged logits (B, 400)."""

    def __init__(self, num_classes: int = NUM_CLASSES, *, rngs: nnx.Rngs):
        self.conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), rngs=rngs)
        self.conv3d_2b_1x1 = Unit3D(64, 64, rngs=rngs)
        self.conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), rngs=rngs)
        for name, in_features, widths in INCEPTION_BLOCKS:
            setattr(self, name, InceptionModule(in_features, widths, rngs=rngs))
        self.logits = Unit3D(1024, num_classes, batch_norm=False, activation=False, rngs=rngs)

    def __call__(self, video: jax.Array) -> jax.Array:
        """video: (B, T, 224, 224, 3) in [-1, 1] -> (B, num_classes) logits averaged over time."""
        if video.ndim != 5 or video.shape[2:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(
                f"I3D expects (B, T, {INPUT_SIZE}, {INPUT_SIZE}, 3) frames in [-1, 1]; got "
                f"{video.shape}. Resize with mav_jax.eval.resize.tf1_bilinear_resize first."
            )
        if video.shape[1] < MIN_FRAMES:
            raise ValueError(
                f"I3D needs at least {MIN_FRAMES} frames per clip, got {video.shape[1]}."
            )
        x = self.conv3d_1a_7x7(video.astype(jnp.float32))
        x = nnx.max_pool(x, (1, 3, 3), strides=(1, 2, 2), padding="SAME")
        x = self.conv3d_2c_3x3(self.conv3d_2b_1x1(x))
        x = nnx.max_pool(x, (1, 3, 3), strides=(1, 2, 2), padding="SAME")
        for name, _, _ in INCEPTION_BLOCKS:
            if name == "mixed_4b":
                x = nnx.max_pool(x, (3, 3, 3), strides=(2, 2, 2), padding="SAME")
            elif name == "mixed_5b":
                x = nnx.max_pool(x, (2, 2, 2), strides=(2, 2, 2), padding="SAME")
            x = getattr(self, name)(x)
        x = nnx.avg_pool(x, (2, 7, 7), strides=(1, 1, 1), padding="VALID")  # (B, T', 1, 1, 1024)
        logits = self.logits(x)[:, :, 0, 0, :]  # (B, T', 400)
        return logits.mean(axis=1)
