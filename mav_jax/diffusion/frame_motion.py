"""Frame noise that moves with the video: the shared part of the frames' noise translated frame to
frame (warped noise, Burgert et al. 2025, "Go-with-the-Flow", for one global translation).

D^t's frames share part of their noise (`stages.conditioned.initial_noise`). Shared in place, it
seeds the same stroke or blob at the same pixels in every frame, so what it seeds stays put.
Translated frame to frame, it seeds a steady drift instead. In training the shared noise follows
each clip's own translation (`translation_from_middle`), so the network learns that the shared
noise moves with the content; at sampling it drifts at a set speed (`drift_velocity`,
`velocity_shifts`).

Translations of noise are whole pixels and wrap around (`jnp.roll`), so every frame's noise is
still exactly N(0, I). The same translation estimate moves frames too (`shift`, bilinear): ↑F's
motion-compensated start (`stages.interpolation.blend_given`), and D^t's steady-motion second
pass (`steady_velocity`, `steady_motion_guess`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Pixels a frame under which `steady_velocity` counts a clip as still: 3.75% of the embedded
# dataset's real clips, 7.5% of the quickstart D^t's keyframes from drifting noise (bench/README.md).
STILL_SPEED = 0.5


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
    rows, cols = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )

    def one(image, offset):  # (H, W, C), (2,)
        where = [rows - offset[0], cols - offset[1]]
        channel = lambda c: jax.scipy.ndimage.map_coordinates(c, where, order=1, mode="nearest")  # noqa: E731
        return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)

    return jax.vmap(one)(images, offsets.astype(jnp.float32))


def drift_velocity(key: jax.Array, batch: int, speed: float) -> jax.Array:
    """(batch, 2) (row, col) velocities of `speed` pixels a frame, in a direction drawn uniformly
    for each video."""
    angle = jax.random.uniform(key, (batch,), maxval=2 * jnp.pi)
    return speed * jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1)


def frames_from_middle(num_frames: int) -> np.ndarray:
    """(num_frames,) each frame's signed distance in frames from the middle one (static)."""
    return np.arange(num_frames) - num_frames // 2


def velocity_shifts(velocity: jax.Array, num_frames: int) -> jax.Array:
    """velocity (B, 2), pixels a frame -> (B, num_frames, 2) int32: each frame's whole-pixel
    translation from the middle frame."""
    offset = frames_from_middle(num_frames)
    return jnp.round(offset[None, :, None] * velocity[:, None, :]).astype(jnp.int32)


def translate(noise: jax.Array, shifts: jax.Array) -> jax.Array:
    """noise (B, H, W, C) and shifts (B, F, 2) -> (B, F, H, W, C): each frame the noise rolled
    by its (row, col) shift, so it moves as content translated by that shift would."""

    def one_frame(image, offset):  # (H, W, C), (2,)
        return jnp.roll(image, (offset[0], offset[1]), axis=(0, 1))

    per_video = jax.vmap(one_frame, in_axes=(None, 0))  # one noise, every frame's shift
    return jax.vmap(per_video)(noise, shifts)


def steady_velocity(video: jax.Array, still_fallback: jax.Array | None = None) -> jax.Array:
    """(B, F, H, W, C), F >= 2 -> (B, 2) float: the clip's velocity in pixels a frame, (row, col),
    as the median over frames of each frame's translation from the middle one divided by its
    distance from it. The median keeps one frame that jumps (a changed shape at an end) from
    setting the speed. Clips slower than STILL_SPEED take `still_fallback` (B, 2) where given (D^t:
    a first pass that left the digit in place did not follow the drift its noise was seeded with)."""
    num_frames = video.shape[1]
    if num_frames < 2:
        raise ValueError(f"A velocity needs at least 2 frames, got {num_frames}.")
    offset = frames_from_middle(num_frames)
    others = offset != 0
    per_frame = (
        translation_from_middle(video)[:, others] / offset[others][None, :, None]
    )  # (B, F-1, 2)
    velocity = jnp.median(per_frame, axis=1)  # (B, 2)
    if still_fallback is None:
        return velocity
    still = jnp.linalg.norm(velocity, axis=-1, keepdims=True) < STILL_SPEED  # (B, 1)
    return jnp.where(still, still_fallback, velocity)


def steady_motion_guess(video: jax.Array, velocity: jax.Array) -> jax.Array:
    """(B, F, H, W, C), velocity (B, 2) -> (B, F, H, W, C): every frame the clip's middle frame,
    moved `velocity` pixels a frame from it, so the content keeps one shape and one velocity.
    Moves keep their fractions of a pixel (bilinear): rounded to whole pixels, a digit slower than
    a pixel a frame stood still and then jumped (bench/README, "One speed, smaller steps"); the blur
    of a half-pixel move is what the second pass re-renders."""
    b, f = video.shape[:2]
    offsets = jnp.asarray(frames_from_middle(f), jnp.float32)[None, :, None] * velocity[:, None, :]
    offsets = offsets.reshape(b * f, 2)  # pixels from the middle frame
    middle = jnp.repeat(video[:, f // 2], f, axis=0)  # (B*F, H, W, C)
    return shift(middle, offsets).reshape(video.shape)
