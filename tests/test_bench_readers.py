"""bench/prompt_fidelity.py's colour reader: it must read real frames' colours, or the bench's colour
accuracy measures brightness instead (the plain-RGB reader it replaced read 48% of them)."""

import importlib.util
import pathlib

import numpy as np

from mav_jax.data.digits_render import render_clip

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
