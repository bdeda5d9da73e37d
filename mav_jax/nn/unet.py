"""The spatio-temporal U-Net that every cascade stage shares.

An ADM/unCLIP-style U-Net whose convolutions are `Pseudo3DConv`s and whose attention blocks are
`Pseudo3DAttention`s. Built with `temporal=False` it is the image U-Net; with `temporal=True` it has
the same spatial parameters at the same paths plus identity-initialised temporal ones, so an image
checkpoint loads into it unchanged and, at initialisation, it computes the image U-Net frame by frame.

Conditioning (each optional, by config): diffusion timestep, frame rate, the low-res input's noise
augmentation level (all added into one embedding), a global embedding vector (the CLIP image
embedding: added to that embedding and projected to context tokens for cross-attention, with a
null embedding for classifier-free guidance), and extra input channels concatenated to the input.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from mav_jax.nn.block_scan import identical_runs, scan_blocks
from mav_jax.nn.embeddings import ScalarEmbedding
from mav_jax.nn.layers import axes_metadata, conv, dense, group_norm, layer_norm
from mav_jax.nn.pseudo3d import (
    TEMPORAL_ATTENTION,
    TEMPORAL_CONV,
    TEMPORAL_NORM,
    Pseudo3DAttention,
    Pseudo3DConv,
)
from mav_jax.nn.remat import rematted
from mav_jax.nn.unet_config import UNetConfig
from mav_jax.parallel import logical_axes as ax

FPS_EMBEDDING = "fps_embedding"
# Parameters under any of these names exist only in the video model (see `is_temporal_path`).
TEMPORAL_NAMES = frozenset({TEMPORAL_CONV, TEMPORAL_NORM, TEMPORAL_ATTENTION, FPS_EMBEDDING})


# Parameters that exist only to condition on the CLIP image embedding.
EMBEDDING_NAMES = frozenset(
    {
        "embedding_proj",
        "context_proj",
        "context_norm",
        "null_embedding",
        "cross_attention",
        "cross_norm",
    }
)


def is_embedding_path(path: Sequence[object]) -> bool:
    """True for a parameter path of the CLIP-embedding conditioning (projections, cross-attention)."""
    return any(str(part) in EMBEDDING_NAMES for part in path)


def is_temporal_path(path: Sequence[object]) -> bool:
    """True for a parameter path that belongs to a temporal layer (or the fps embedding)."""
    return any(str(getattr(part, "key", part)) in TEMPORAL_NAMES for part in path)


def _per_frame_group_norm(norm: nnx.GroupNorm, x: jax.Array) -> jax.Array:
    """GroupNorm with statistics per frame: (B, F, H, W, C) -> same shape, float32."""
    b, f, h, w, c = x.shape
    return norm(x.reshape(b * f, h, w, c)).reshape(b, f, h, w, c)


class ResBlock(nnx.Module):
    """GroupNorm-SiLU-Pseudo3DConv twice, with the conditioning embedding as a scale and shift."""

    def __init__(self, in_features: int, out_features: int, cfg: UNetConfig, *, rngs: nnx.Rngs):
        dtype = cfg.compute_dtype
        p3d = dict(
            temporal_kernel_size=cfg.temporal_kernel_size, temporal=cfg.temporal, dtype=dtype
        )
        self.dtype = dtype
        self.norm1 = group_norm(in_features, rngs=rngs)
        self.conv1 = Pseudo3DConv(in_features, out_features, rngs=rngs, **p3d)
        self.emb_proj = dense(
            cfg.time_embed_dim, 2 * out_features, axes=(ax.MLP, ax.EMBED), dtype=dtype, rngs=rngs
        )
        self.norm2 = group_norm(out_features, rngs=rngs)
        self.dropout = nnx.Dropout(cfg.dropout)
        self.conv2 = Pseudo3DConv(out_features, out_features, rngs=rngs, **p3d)
        self.skip = (
            conv(in_features, out_features, (1, 1), dtype=dtype, rngs=rngs)
            if in_features != out_features
            else None
        )

    def __call__(self, x, emb, *, dropout_key, deterministic: bool, temporal: bool):
        # x: (B, F, H, W, C_in); emb: (B, E)
        h = jax.nn.silu(_per_frame_group_norm(self.norm1, x)).astype(self.dtype)
        h = self.conv1(h, temporal=temporal)  # (B, F, H, W, C_out)
        scale, shift = jnp.split(self.emb_proj(jax.nn.silu(emb).astype(self.dtype)), 2, axis=-1)
        h = _per_frame_group_norm(self.norm2, h)
        h = h * (1 + scale[:, None, None, None, :]) + shift[:, None, None, None, :]
        h = jax.nn.silu(h).astype(self.dtype)
        h = self.dropout(h, deterministic=deterministic, rngs=dropout_key)
        h = self.conv2(h, temporal=temporal)
        skip = x if self.skip is None else self.skip(x)
        return skip + h


class UNetBlock(nnx.Module):
    """One ResBlock, followed by a Pseudo3DAttention block on levels that attend."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        attend: bool,
        cfg: UNetConfig,
        context_features,
        *,
        rngs: nnx.Rngs,
    ):
        self.res = ResBlock(in_features, out_features, cfg, rngs=rngs)
        self.attention = (
            Pseudo3DAttention(
                out_features,
                cfg.num_heads,
                context_features=context_features,
                temporal=cfg.temporal,
                dtype=cfg.compute_dtype,
                attention_impl=cfg.attention_impl,
                splash_min_tokens=cfg.splash_min_tokens,
                rngs=rngs,
            )
            if attend
            else None
        )

    def __call__(self, x, emb, context, dropout_key, *, deterministic: bool, temporal: bool):
        x = self.res(
            x, emb, dropout_key=dropout_key, deterministic=deterministic, temporal=temporal
        )
        if self.attention is not None:
            x = self.attention(x, context, temporal=temporal)
        return x


class Downsample(nnx.Module):
    """Stride-2 3x3 conv on every frame: halves H and W, never F."""

    def __init__(self, features: int, cfg: UNetConfig, *, rngs: nnx.Rngs):
        self.conv = conv(features, features, (3, 3), strides=2, dtype=cfg.compute_dtype, rngs=rngs)

    def __call__(self, x):  # (B, F, H, W, C) -> (B, F, H/2, W/2, C)
        return self.conv(x)


class Upsample(nnx.Module):
    """Nearest-neighbour 2x on every frame, then a 3x3 conv."""

    def __init__(self, features: int, cfg: UNetConfig, *, rngs: nnx.Rngs):
        self.conv = conv(features, features, (3, 3), dtype=cfg.compute_dtype, rngs=rngs)

    def __call__(self, x):  # (B, F, H, W, C) -> (B, F, 2H, 2W, C)
        return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=2), 2, axis=3))


class SpatioTemporalUNet(nnx.Module):
    """The shared U-Net over videos `(B, F, H, W, C)`; images are one-frame videos (F == 1)."""

    def __init__(self, config: UNetConfig, *, rngs: nnx.Rngs):
        cfg = self.config = config
        dtype = cfg.compute_dtype
        emb_dim = cfg.time_embed_dim
        base = cfg.base_channels

        scalar = dict(dtype=dtype, rngs=rngs)
        self.time_embedding = (
            ScalarEmbedding(base, emb_dim, **scalar) if cfg.timestep_conditioning else None
        )
        # New in the video phase: starts at zero so the video model begins as the image model.
        self.fps_embedding = (
            ScalarEmbedding(base, emb_dim, zero_init=True, **scalar)
            if cfg.fps_conditioning
            else None
        )
        self.noise_aug_embedding = (
            ScalarEmbedding(base, emb_dim, **scalar) if cfg.noise_aug_conditioning else None
        )
        context_features = None
        embedding_proj = context_proj = context_norm = null_embedding = None
        if cfg.embedding_dim:
            embedding_proj = dense(
                cfg.embedding_dim, emb_dim, axes=(ax.COND, ax.EMBED), dtype=dtype, rngs=rngs
            )
            if cfg.num_context_tokens:
                context_features = emb_dim
                context_proj = dense(
                    cfg.embedding_dim,
                    cfg.num_context_tokens * emb_dim,
                    axes=(ax.COND, ax.EMBED),
                    dtype=dtype,
                    rngs=rngs,
                )
                context_norm = layer_norm(emb_dim, rngs=rngs)
            if cfg.null_embedding == "learned":
                null_embedding = nnx.Param(
                    0.02 * jax.random.normal(rngs.params(), (cfg.embedding_dim,), jnp.float32),
                    **axes_metadata(ax.COND),
                )
        # Assigned once each: NNX fixes an attribute's data/static status at first assignment.
        self.embedding_proj = embedding_proj
        self.context_proj = context_proj
        self.context_norm = context_norm
        self.null_embedding = null_embedding

        p3d = dict(
            temporal_kernel_size=cfg.temporal_kernel_size, temporal=cfg.temporal, dtype=dtype
        )
        self.input_conv = Pseudo3DConv(
            cfg.in_channels + cfg.extra_in_channels, base, rngs=rngs, **p3d
        )

        def block(cin: int, cout: int, level: int) -> UNetBlock:
            attend = level in cfg.attention_levels
            return UNetBlock(cin, cout, attend, cfg, context_features, rngs=rngs)

        channels = base
        skip_channels = [channels]
        down: list[nnx.Module] = []
        for level, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.num_res_blocks):
                down.append(block(channels, base * mult, level))
                channels = base * mult
                skip_channels.append(channels)
            if level != cfg.num_levels - 1:
                down.append(Downsample(channels, cfg, rngs=rngs))
                skip_channels.append(channels)
        self.down = nnx.List(down)

        self.middle = nnx.List(
            [
                UNetBlock(channels, channels, True, cfg, context_features, rngs=rngs),
                UNetBlock(channels, channels, False, cfg, context_features, rngs=rngs),
            ]
        )

        up: list[nnx.Module] = []
        for level in reversed(range(cfg.num_levels)):
            width = base * cfg.channel_mults[level]
            for _ in range(cfg.num_res_blocks + 1):
                up.append(block(channels + skip_channels.pop(), width, level))
                channels = width
            if level != 0:
                up.append(Upsample(channels, cfg, rngs=rngs))
        self.up = nnx.List(up)

        self.output_norm = group_norm(channels, rngs=rngs)
        self.output_conv = Pseudo3DConv(channels, cfg.out_channels, rngs=rngs, **p3d)

    def __call__(
        self,
        x: jax.Array,
        timesteps: jax.Array | None = None,
        *,
        fps: jax.Array | None = None,
        noise_aug_level: jax.Array | None = None,
        embedding: jax.Array | None = None,
        embedding_mask: jax.Array | None = None,
        extra: jax.Array | None = None,
        dropout_key: jax.Array | None = None,
        deterministic: bool = True,
        temporal: bool = True,
    ) -> jax.Array:
        """Predict eps (or v) for a noisy video.

        Args:
          x: (B, F, H, W, in_channels) noisy video in [-1, 1] scale.
          timesteps: (B,) diffusion timesteps (int or float).
          fps: (B,) frame rate of the clip, when `fps_conditioning`.
          noise_aug_level: (B,) noise level of the low-res input, when `noise_aug_conditioning`.
          embedding: (B, embedding_dim) global embedding (CLIP image embedding).
          embedding_mask: (B,) bool; False replaces that example's embedding by the null embedding
            (classifier-free guidance dropout at training, the unconditional pass at sampling).
          extra: (B, F, H, W, extra_in_channels) channels concatenated to `x`.
          dropout_key: PRNG key for dropout; required when `deterministic=False` and dropout > 0.
          deterministic: no dropout when True.
          temporal: False switches temporal mixing off (image mode) even if the layers exist.

        Returns:
          (B, F, H, W, out_channels) float32.
        """
        cfg = self.config
        self._check_inputs(x, timesteps, fps, noise_aug_level, embedding, embedding_mask, extra)
        if not deterministic and cfg.dropout > 0 and dropout_key is None:
            raise ValueError("dropout_key is required when deterministic=False and dropout > 0.")
        batch = x.shape[0]
        temporal = temporal and cfg.temporal and x.shape[1] > 1

        emb = jnp.zeros((batch, cfg.time_embed_dim), jnp.float32)  # (B, E)
        if self.time_embedding is not None:
            emb = emb + self.time_embedding(timesteps)
        if self.fps_embedding is not None:
            emb = emb + self.fps_embedding(fps)
        if self.noise_aug_embedding is not None:
            emb = emb + self.noise_aug_embedding(noise_aug_level)
        context = None
        if cfg.embedding_dim:
            cond = self._with_null_embedding(embedding.astype(jnp.float32), embedding_mask)
            emb = emb + self.embedding_proj(cond)
            if self.context_proj is not None:
                tokens = self.context_proj(cond).reshape(batch, cfg.num_context_tokens, -1)
                context = self.context_norm(tokens)  # (B, K, E)

        h = x if extra is None else jnp.concatenate([x, extra.astype(x.dtype)], axis=-1)
        h = self.input_conv(h.astype(cfg.compute_dtype), temporal=temporal)  # (B, F, H, W, base)

        def apply_block(block: UNetBlock, h, inputs):
            skip, key = inputs  # the up path's skip connection; the block's dropout key
            if skip is not None:
                h = jnp.concatenate([h, skip.astype(h.dtype)], axis=-1)
            return block(h, emb, context, key, deterministic=deterministic, temporal=temporal)

        block_count = itertools.count()  # a distinct dropout key per block, in order

        def run_row(blocks: list[UNetBlock], h, skips: list | None) -> tuple[jax.Array, list]:
            """Blocks in a row (scanned when `scan_blocks`): (last output, every output)."""
            skips = skips if skips is not None else [None] * len(blocks)
            keys = [
                None if dropout_key is None else jax.random.fold_in(dropout_key, next(block_count))
                for _ in blocks
            ]
            if len(blocks) > 1:
                per_block = (
                    None if skips[0] is None else jnp.stack(skips),
                    None if dropout_key is None else jnp.stack(keys),
                )
                h, outputs = scan_blocks(blocks, apply_block, h, per_block, cfg.remat)
                return h, list(outputs)
            outputs = []
            for block, skip, key in zip(blocks, skips, keys, strict=True):
                h = rematted(apply_block, cfg.remat)(block, h, (skip, key))
                outputs.append(h)
            return h, outputs

        skips = [h]
        for row in self._rows(self.down):
            if isinstance(row[0], Downsample):
                h = row[0](h)
                skips.append(h)
            else:
                h, outputs = run_row(row, h, None)
                skips.extend(outputs)
        for row in self._rows(self.middle):
            h, _ = run_row(row, h, None)
        for row in self._rows(self.up):
            if isinstance(row[0], Upsample):
                h = row[0](h)
            else:
                h, _ = run_row(row, h, [skips.pop() for _ in row])

        h = jax.nn.silu(_per_frame_group_norm(self.output_norm, h)).astype(cfg.compute_dtype)
        return self.output_conv(h, temporal=temporal).astype(jnp.float32)

    def _rows(self, layers) -> list[list[nnx.Module]]:
        """`layers` in order as rows to run together: with `scan_blocks`, each run of identical
        consecutive UNetBlocks (same structure and parameter shapes) is one row; else one each."""
        if not self.config.scan_blocks:
            return [[layer] for layer in layers]
        runs = identical_runs(layers, lambda layer: isinstance(layer, UNetBlock))
        return [list(layers[start:stop]) for start, stop in runs]

    def _with_null_embedding(self, embedding: jax.Array, mask: jax.Array | None) -> jax.Array:
        """Swap in the null embedding where `mask` is False (learned, or zeros)."""
        if mask is None:
            return embedding
        null = (
            jnp.zeros_like(embedding)
            if self.null_embedding is None
            else jnp.broadcast_to(self.null_embedding[...], embedding.shape)
        )
        return jnp.where(jnp.asarray(mask, bool)[:, None], embedding, null)

    def _check_inputs(self, x, timesteps, fps, noise_aug_level, embedding, embedding_mask, extra):
        """Fail at trace time, with the expected shapes, rather than deep inside a conv."""
        cfg = self.config
        expected = f"(B, F, H, W, {cfg.in_channels}) with H and W divisible by {cfg.spatial_factor}"
        if x.ndim != 5 or x.shape[-1] != cfg.in_channels:
            hint = " (for images use one frame: x[:, None])" if x.ndim == 4 else ""
            raise ValueError(f"SpatioTemporalUNet input must be {expected}; got {x.shape}{hint}.")
        b, f, h, w, _ = x.shape
        if h % cfg.spatial_factor or w % cfg.spatial_factor:
            raise ValueError(
                f"SpatioTemporalUNet input must be {expected} ({cfg.num_levels} levels); got {x.shape}."
            )

        def need(name: str, value, wanted: bool, shape: tuple[int, ...]):
            if wanted and value is None:
                raise ValueError(f"`{name}` of shape {shape} is required by this U-Net's config.")
            if not wanted and value is not None:
                raise ValueError(f"`{name}` was given, but this U-Net's config does not use it.")
            if value is not None and tuple(jnp.shape(value)) != shape:
                raise ValueError(
                    f"`{name}` must have shape {shape}, got {tuple(jnp.shape(value))}."
                )

        need("timesteps", timesteps, cfg.timestep_conditioning, (b,))
        need("fps", fps, cfg.fps_conditioning, (b,))
        need("noise_aug_level", noise_aug_level, cfg.noise_aug_conditioning, (b,))
        need("embedding", embedding, cfg.embedding_dim > 0, (b, cfg.embedding_dim))
        if embedding_mask is not None:
            need("embedding_mask", embedding_mask, cfg.embedding_dim > 0, (b,))
        need("extra", extra, cfg.extra_in_channels > 0, (b, f, h, w, cfg.extra_in_channels))


@functools.cache
def unet_denoise_fn(graphdef: nnx.GraphDef):
    """A pure `denoise_fn(state, x_t, t, cond)` for a U-Net split as `nnx.split(model)`.

    `cond` holds the U-Net's keyword inputs (fps, embedding, embedding_mask, extra, ...). The
    function is cached per graphdef, so passing it as a static argument to the jit-compiled
    samplers reuses one compilation across calls.
    """

    def denoise(state: nnx.State, x_t: jax.Array, t: jax.Array, cond: dict) -> jax.Array:
        model = nnx.merge(graphdef, state)
        timesteps = t if model.config.timestep_conditioning else None
        return model(x_t, timesteps, **cond)

    return denoise
