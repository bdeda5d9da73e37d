"""bench/prompt_fidelity.py's readers. The colour reader must read real frames' colours, or the
bench's colour accuracy measures brightness instead (the plain-RGB reader it replaced read 48% of
them). The digit reader must read handwriting it never saw, as a generated digit is (the logistic
regression it replaced read 81% of the eval frames)."""

import importlib.util
import pathlib

import numpy as np

from mav_jax.data.augment import CropFlipScale
from mav_jax.data.digits_render import render_clip, scan_index

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "prompt_fidelity.py"


def _prompt_fidelity():
    spec = importlib.util.spec_from_file_location("prompt_fidelity", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_colour_reader_names_the_colour_of_downscaled_real_frames():
    bench = _prompt_fidelity()
    clips = [render_clip(seed, num_frames=2, frame_size=64) for seed in range(48)]
    frames = np.concatenate([clip.frames for clip in clips]).astype(np.float32)  # (96, 64, 64, 3)
    # The stages' 16x16: each pixel the mean of a 4x4 block, so strokes blend with the background.
    small = frames.reshape(-1, 16, 4, 16, 4, 3).mean(axis=(2, 4)) / 127.5 - 1  # (96, 16, 16, 3)
    wanted = np.repeat([clip.color for clip in clips], 2)
    assert len(set(wanted)) == len(bench.COLOUR_NAMES)  # every palette colour is tried
    assert bench.colour_names(small) == wanted.tolist()
    # A darker shade of a colour (a stroke over the dark background) keeps its name.
    assert bench.colour_names(small * 0.5 - 0.5) == wanted.tolist()


def test_digit_reader_reads_scans_it_never_saw_and_learns_from_none_of_them():
    bench = _prompt_fidelity()
    held_out = range(5_000_000, 5_000_060)  # clips of 60 scans, none of them in the reader's frames
    left_out = {scan_index(seed) for seed in held_out}
    frames, digits = bench.reader_frames(16, 32, 2048, left_out)
    kept = [s for s in range(1_000_000, 1_000_000 + 2048) if scan_index(s) not in left_out]
    assert len(frames) == len(kept) < 2048 and frames.shape[1:] == (16, 16, 3)
    reader = bench.digit_reader(16, 32, held_out, count=2048)
    resize, rng = CropFlipScale(16, flip=False), np.random.default_rng(0)
    clips = [render_clip(seed, num_frames=3, frame_size=32) for seed in held_out]
    test = np.concatenate([resize.random_map({"video": c.frames}, rng)["video"] for c in clips])
    wanted = np.repeat([c.digit for c in clips], 3)
    assert np.mean(reader.predict(bench.digit_windows(test)) == wanted) >= 0.9


def _swap_digits(clip, frame_size: int, seed: int) -> np.ndarray:
    """`clip`'s frames with each frame's digit replaced by another scan of another digit, drawn at
    the same position and in the same colour: per frame it is still a digit, but not the same one."""
    from mav_jax.data.digits_render import BACKGROUND, COLORS, handwritten_digits

    images, labels = handwritten_digits()
    rng = np.random.default_rng(seed)
    size = frame_size // 2
    colour = np.asarray(COLORS[clip.color], np.float32)
    frames = []
    for row, col in clip.positions.astype(int):
        index = rng.choice(np.flatnonzero(labels != clip.digit))
        alpha = np.kron(images[index], np.ones((size // 8, size // 8), np.float32))[..., None]
        canvas = np.broadcast_to(
            np.asarray(BACKGROUND, np.float32), (frame_size,) * 2 + (3,)
        ).copy()
        patch = canvas[row : row + size, col : col + size]
        canvas[row : row + size, col : col + size] = (1 - alpha) * patch + alpha * colour
        frames.append(np.clip(np.round(canvas), 0, 255).astype(np.uint8))
    return np.stack(frames)


def test_shape_consistency_separates_one_moving_digit_from_one_that_changes_each_frame():
    bench = _prompt_fidelity()
    resize, rng = CropFlipScale(16, flip=False), np.random.default_rng(0)
    seeds = range(3_000_000, 3_000_016)  # the eval split's clips
    clips = [render_clip(seed, num_frames=13, frame_size=32) for seed in seeds]
    real = np.stack([resize.random_map({"video": c.frames}, rng)["video"] for c in clips])
    swapped = np.stack(
        [
            resize.random_map({"video": _swap_digits(c, 32, i)}, rng)["video"]
            for i, c in enumerate(clips)
        ]
    )
    assert real.shape == swapped.shape == (16, 13, 16, 16, 3)
    consistent, changing = bench.shape_consistency(real), bench.shape_consistency(swapped)
    assert consistent > 0.95 and changing < 0.88, (consistent, changing)
    # The per-video figure separates every clip, not only the means.
    per_clip = [bench.shape_consistency(video[None]) for video in real]
    per_swapped = [bench.shape_consistency(video[None]) for video in swapped]
    assert min(per_clip) > max(per_swapped), (per_clip, per_swapped)
