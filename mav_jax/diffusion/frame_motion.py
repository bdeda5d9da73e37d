"""Frame noise that moves with the video: the shared part of the frames' noise translated frame to
frame (warped noise, Burgert et al. 2025, "Go-with-the-Flow", for one global translation).

D^t's frames share part of their noise (`stages.conditioned.initial_noise`). Shared in place, it
seeds the same stroke or blob at the same pixels in every frame, so what it seeds stays put.
Translated frame to frame, it seeds a steady drift instead. In training the shared noise follows
each clip's own translation (`translation_from_middle`), so the network learns that the shared
noise moves with the content; at sampling it drifts at a set speed (`drift_shifts`).

Translations of noise are whole pixels and wrap around (`jnp.roll`), so every frame's noise is
still exactly N(0, I). The same translation estimate moves frames too (`shift`, bilinear): ↑F's
motion-compensated start (`stages.interpolation.blend_given`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def translation(reference: jax.Array, frames: jax.Array) -> jax.Array:
    """reference (..., H, W, C), frames (..., H, W, C) -> (..., 2) int32: the whole-pixel
    (row, col) translation that takes each reference to its frame, by phase correlation of their
    luminance (the peak of the normalised cross-power spectrum's inverse). A frame that does not
    move, or an empty one, gives (0, 0)."""
    h, w = frames.shape[-3:-1]

    def spectrum(x):  # (..., H, W, C) -> (..., H, W); the background's level is no signal
        luma = x.astype(jnp.float32).mean(axis=-1)
        return jnp.fft.fft2(luma - luma.mean(axis=(-2, -1), keepdims=True))

    cross = spectrum(frames) * jnp.conj(spectrum(reference))
    cross = cross / jnp.maximum(jnp.abs(cross), 1e-6)
    surface = jnp.fft.ifft2(cross).real.reshape(*cross.shape[:-2], h * w)
    # Ties (an empty frame's flat surface) go to the first index, (0, 0): no translation.
    peak = jnp.argmax(surface, axis=-1)
    rows, cols = peak // w, peak % w
    wrap = lambda d, n: jnp.where(d >= (n + 1) // 2, d - n, d)  # noqa: E731  [0, n) -> [-n/2, n/2)
    return jnp.stack([wrap(rows, h), wrap(cols, w)], axis=-1).astype(jnp.int32)


def translation_from_middle(video: jax.Array) -> jax.Array:
    """(B, F, H, W, C) -> (B, F, 2) int32: the translation (`translation`) that takes each
    clip's middle frame to each of its frames; (0, 0) for the middle frame."""
    middle = video.shape[1] // 2
    return translation(video[:, middle : middle + 1], video)


def shift(images: jax.Array, offsets: jax.Array) -> jax.Array:
    """images (N, H, W, C), offsets (N, 2) float (row, col) -> (N, H, W, C): each image moved by
    its offset, bilinearly for fractions of a pixel; what enters at an edge repeats the edge
    (the background, where the content is away from it)."""
    h, w = images.shape[1:3]
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                              indexing="ij")  # fmt: skip

    def one(image, offset):  # (H, W, C), (2,)
        where = [rows - offset[0], cols - offset[1]]
        channel = lambda c: jax.scipy.ndimage.map_coordinates(c, where, order=1, mode="nearest")  # noqa: E731
        return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)

    return jax.vmap(one)(images, offsets.astype(jnp.float32))


def drift_shifts(key: jax.Array, batch: int, num_frames: int, speed: float) -> jax.Array:
    """(batch, num_frames, 2) int32 translations from the middle frame of a steady drift at
    `speed` pixels a frame, in a direction drawn uniformly for each video."""
    angle = jax.random.uniform(key, (batch, 1), maxval=2 * jnp.pi)
    offset = jnp.arange(num_frames) - num_frames // 2  # frames from the middle one
    rows = jnp.round(offset * speed * jnp.sin(angle))
    cols = jnp.round(offset * speed * jnp.cos(angle))
    return jnp.stack([rows, cols], axis=-1).astype(jnp.int32)


def translate(noise: jax.Array, shifts: jax.Array) -> jax.Array:
    """noise (B, H, W, C) and shifts (B, F, 2) -> (B, F, H, W, C): each frame the noise rolled
    by its (row, col) shift, so it moves as content translated by that shift would."""

    def one_frame(image, offset):  # (H, W, C), (2,)
        return jnp.roll(image, (offset[0], offset[1]), axis=(0, 1))

    per_video = jax.vmap(one_frame, in_axes=(None, 0))  # one noise, every frame's shift
    return jax.vmap(per_video)(noise, shifts)
