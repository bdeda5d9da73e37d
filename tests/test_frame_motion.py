"""Warped frame noise (diffusion/frame_motion.py): estimating a clip's translation, drifting the
shared noise at sampling, and the keyframe loss moving its shared noise with the clip."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import keyframe_loss_input

from mav_jax.diffusion.frame_motion import (
    drift_velocity,
    shift,
    steady_motion_guess,
    steady_velocity,
    translate,
    translation_from_middle,
    velocity_shifts,
)
from mav_jax.stages.conditioned import initial_noise

SHIFTS = [
    [(-3, 2), (-1, 1), (0, 0), (2, -1), (4, -5)],
    [(0, -6), (1, -3), (0, 0), (-1, 3), (-2, 6)],
]


def _translated(image: np.ndarray, shifts) -> np.ndarray:
    """(H, W, C) and F (row, col) shifts -> (F, H, W, C), the image rolled by each."""
    return np.stack([np.roll(image, s, axis=(0, 1)) for s in shifts])


def test_translation_from_middle_recovers_whole_pixel_translations():
    rng = np.random.default_rng(0)
    textured = _translated(rng.uniform(-1, 1, (16, 16, 3)), SHIFTS[0])
    # A digit-like blob on a dark background that moves without wrapping round the edge.
    blob = np.full((16, 16, 3), -1.0)
    blob[6:10, 5:9] = rng.uniform(0, 1, (4, 4, 3))
    sparse = _translated(blob, SHIFTS[1])
    found = np.asarray(translation_from_middle(jnp.asarray(np.stack([textured, sparse]))))
    np.testing.assert_array_equal(found, np.asarray(SHIFTS))
    still = np.asarray(translation_from_middle(jnp.full((1, 3, 8, 8, 3), -1.0)))  # empty frames
    np.testing.assert_array_equal(still, np.zeros((1, 3, 2)))


def _drift_shifts(key, batch: int, num_frames: int, speed: float) -> np.ndarray:
    """(B, F, 2): the keyframe sampler's drift, as it builds it."""
    return np.asarray(velocity_shifts(drift_velocity(key, batch, speed), num_frames))


def test_drift_shifts_are_a_steady_drift_from_the_middle_frame():
    shifts = _drift_shifts(jax.random.key(0), 16, 5, 2.0)  # (B, F, 2)
    assert shifts.shape == (16, 5, 2) and shifts.dtype == np.int32
    np.testing.assert_array_equal(shifts[:, 2], 0)
    steps = np.linalg.norm(np.diff(shifts, axis=1), axis=-1)  # whole pixels, so about 2 each
    assert steps.max() <= 2 + np.sqrt(2) and steps.mean() > 1.5
    travel = np.linalg.norm(shifts[:, -1] - shifts[:, 0], axis=-1)  # straight: 4 steps of 2
    np.testing.assert_allclose(travel, 8, atol=1)
    assert len({tuple(s) for s in shifts[:, -1]}) > 8  # each video its own direction
    np.testing.assert_array_equal(_drift_shifts(jax.random.key(0), 4, 5, 0.0), 0)


def test_the_shared_noise_moves_with_the_shifts_and_stays_standard_normal():
    shifts = jnp.asarray(SHIFTS)  # (2, 5, 2)
    moved = np.asarray(initial_noise(jax.random.key(0), (2, 5, 8, 8, 3), 1.0, shifts))
    for b in range(2):
        for f in range(5):
            np.testing.assert_array_equal(moved[b, f], np.roll(moved[b, 2], SHIFTS[b][f], (0, 1)))
    big = jnp.broadcast_to(shifts[:1], (64, 5, 2))
    mixed = np.asarray(initial_noise(jax.random.key(1), (64, 5, 16, 16, 3), 0.5, big))
    assert abs(mixed.std() - 1.0) < 0.03 and abs(mixed.mean()) < 0.03
    back = np.roll(mixed[:, 0], (3, -2), axis=(1, 2))  # frame 0 moved back onto the middle one
    assert abs(np.corrcoef(back.ravel(), mixed[:, 2].ravel())[0, 1] - 0.5) < 0.03
    with pytest.raises(ValueError, match=r"shifts must be \(B, F, 2\)"):
        initial_noise(jax.random.key(0), (2, 4, 8, 8, 3), 0.5, shifts)
    np.testing.assert_array_equal(
        translate(jnp.ones((1, 4, 4, 1)), jnp.zeros((1, 2, 2), int)), np.ones((1, 2, 4, 4, 1))
    )


@pytest.mark.parametrize("follows", [True, False])
def test_the_keyframe_loss_moves_its_shared_noise_with_the_clip(follows):
    """At correlation 1, x_t = alpha x0 + sigma eps is the middle frame's x_t translated as the
    clip is, frame by frame, exactly when the noise follows the clip's motion."""
    rng = np.random.default_rng(0)
    video = np.stack([_translated(rng.uniform(-1, 1, (16, 16, 3)), s) for s in SHIFTS])
    x_t = np.asarray(
        keyframe_loss_input(
            video, training_frame_noise_correlation=1.0, training_noise_follows_motion=follows
        )
    )  # (B, F, H, W, 3)
    moved = np.stack([_translated(x_t[b, 2], SHIFTS[b]) for b in range(2)])
    assert np.allclose(x_t, moved, atol=1e-5) == follows


def test_bad_frame_noise_motion_settings_are_config_problems():
    from mav_jax.diffusion import make_schedule
    from mav_jax.stages.keyframes import KeyframeStage

    stage = KeyframeStage(
        schedule=make_schedule("linear", 100),
        frame_noise_drift=-1.0,
        training_noise_follows_motion=True,
        steady_motion_strength=1.5,
    )
    problems = " ".join(stage.problems())
    assert "frame_noise_drift is a speed in pixels a frame, so not negative; got -1.0" in problems
    assert "set training_frame_noise_correlation > 0 too" in problems
    assert "steady_motion_strength is the fraction of the sampler's steps" in problems


def test_shift_moves_images_by_whole_and_fractional_pixels_repeating_the_edge():
    image = np.zeros((1, 6, 6, 2), np.float32)
    image[0, 2, 2] = [1.0, 2.0]
    whole = np.asarray(shift(jnp.asarray(image), jnp.asarray([[1.0, -2.0]])))
    np.testing.assert_allclose(whole, np.roll(image, (1, -2), axis=(1, 2)), atol=1e-6)
    half = np.asarray(shift(jnp.asarray(image), jnp.asarray([[0.0, 0.5]])))[0, 2, :, 0]
    np.testing.assert_allclose(half, [0, 0, 0.5, 0.5, 0, 0], atol=1e-6)  # split between two
    ramp = jnp.broadcast_to(jnp.arange(6.0)[None, None, :, None], (1, 6, 6, 1))
    moved = np.asarray(shift(ramp, jnp.asarray([[0.0, 2.0]])))[0, 0, :, 0]
    np.testing.assert_allclose(moved, [0, 0, 0, 1, 2, 3], atol=1e-6)  # the left edge repeats


def test_the_steady_motion_guess_is_the_middle_frame_at_the_clips_median_velocity():
    rng = np.random.default_rng(0)
    blob = np.full((24, 24, 3), -1.0)
    blob[10:14, 10:14] = rng.uniform(0, 1, (4, 4, 3))
    steady = [(-2 * f, f) for f in range(-2, 3)]  # 2 px a frame up, 1 right
    clip = _translated(blob, steady)
    jumpy = clip.copy()
    jumpy[0] = _translated(blob, [(5, 7)])[0]  # the first frame lands somewhere else
    videos = jnp.asarray(np.stack([clip, jumpy]))
    velocity = np.asarray(steady_velocity(videos))
    np.testing.assert_allclose(velocity, [[-2, 1], [-2, 1]])  # the median ignores the jump
    # A still clip (under STILL_SPEED) takes the fallback; a moving one keeps its own velocity.
    still = jnp.asarray(np.stack([clip, _translated(blob, [(0, 0)] * 5)]))
    fallback = jnp.asarray([[3.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(steady_velocity(still, still_fallback=fallback), [[-2, 1], [0, -2]])
    guess = np.asarray(steady_motion_guess(videos, jnp.asarray(velocity)))
    np.testing.assert_allclose(guess[1], clip, atol=1e-6)  # every frame the middle one, moved
    # Moves keep their fractions, so a slow clip moves every frame: at 0.5 px a frame, the frame
    # after the middle one is the mean of the middle one and the middle one moved 1 px, and the
    # frame two after is the middle one moved 1 px (not one that stands still, then jumps).
    slow = np.asarray(steady_motion_guess(videos[:1], jnp.asarray([[0.0, 0.5]])))
    moved = _translated(blob, [(0, 0), (0, 1)])
    np.testing.assert_allclose(slow[0, 3], moved.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(slow[0, 4], moved[1], atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 frames"):
        steady_velocity(videos[:, :1])
