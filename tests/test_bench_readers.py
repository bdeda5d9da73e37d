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
