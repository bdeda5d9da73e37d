"""Render Moving Digits clips: real handwritten digits (scikit-learn's bundled 1,797 8x8 scans),
coloured, moving and bouncing on a dark background. Pure numpy and fully determined by a seed.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

COLORS = {  # name -> RGB
    "red": (230, 50, 50),
    "green": (60, 200, 80),
    "blue": (70, 110, 240),
    "yellow": (235, 215, 60),
    "magenta": (220, 70, 210),
    "cyan": (70, 215, 225),
    "orange": (245, 150, 40),
    "white": (235, 235, 235),
}
BACKGROUND = np.array([12, 12, 20], np.float32)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ROWS, COLS = ("top", "middle", "bottom"), ("left", "center", "right")


@functools.lru_cache(maxsize=1)
def handwritten_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) float32 intensities in [0, 1] and their (1797,) labels; no download."""
    from sklearn.datasets import load_digits  # ships the scans inside the wheel

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # (T, S, S, 3) uint8
    digit: int
    color: str
    positions: np.ndarray  # (T, 2) top-left (row, col) of the digit per frame
    velocity: tuple[float, float]  # pixels per frame (row, col) at the start


def position_name(row: float, col: float, frame_size: int, digit_size: int) -> str:
    """'top left', 'middle center', ... from the digit's centre in a 3x3 grid."""
    cy, cx = (row + digit_size / 2) / frame_size, (col + digit_size / 2) / frame_size
    r, c = ROWS[min(int(cy * 3), 2)], COLS[min(int(cx * 3), 2)]
    return "center" if (r, c) == ("middle", "center") else f"{r} {c}"


def direction_name(velocity: tuple[float, float]) -> str:
    vy, vx = velocity
    vertical = "down" if vy > 0 else "up"
    horizontal = "right" if vx > 0 else "left"
    if abs(vy) < 0.4 * abs(vx):
        return horizontal
    if abs(vx) < 0.4 * abs(vy):
        return vertical
    return f"{vertical} and {horizontal}"


def _draw_scan(rng: np.random.Generator) -> int:
    return int(rng.integers(len(handwritten_digits()[0])))


def scan_index(seed: int) -> int:
    """Which scan `render_clip(seed, ...)` draws, without rendering it (a bench leaves the scans of
    the held-out split out of what its digit reader learns from)."""
    return _draw_scan(np.random.default_rng(seed))


def render_clip(seed: int, num_frames: int, frame_size: int, speed_range=(0.5, 2.5)) -> Clip:
    """One clip: a random scan, colour, start position, speed and direction, bouncing off edges."""
    rng = np.random.default_rng(seed)
    images, labels = handwritten_digits()
    index = _draw_scan(rng)
    digit_size = frame_size // 2
    glyph = np.kron(images[index], np.ones((digit_size // 8, digit_size // 8), np.float32))
    color_name = list(COLORS)[int(rng.integers(len(COLORS)))]
    color = np.array(COLORS[color_name], np.float32)

    limit = frame_size - glyph.shape[0]
    pos = rng.uniform(0, limit, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(*speed_range)
    vel = np.array([np.sin(angle), np.cos(angle)]) * speed
    start_velocity = (float(vel[0]), float(vel[1]))

    frames = np.empty((num_frames, frame_size, frame_size, 3), np.uint8)
    positions = np.empty((num_frames, 2), np.float32)
    size = glyph.shape[0]
    for t in range(num_frames):
        r, c = int(round(pos[0])), int(round(pos[1]))
        canvas = np.broadcast_to(BACKGROUND, (frame_size, frame_size, 3)).copy()
        alpha = glyph[:, :, None]
        canvas[r : r + size, c : c + size] = (1 - alpha) * canvas[
            r : r + size, c : c + size
        ] + alpha * color
        frames[t] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
        positions[t] = (r, c)
        pos = pos + vel
        for axis in range(2):  # bounce
            if pos[axis] < 0 or pos[axis] > limit:
                vel[axis] = -vel[axis]
                pos[axis] = np.clip(pos[axis], 0, limit)
    return Clip(frames, int(labels[index]), color_name, positions, start_velocity)


IMAGE_TEMPLATES = (
    "{a_color} {digit} in the {where}",
    "the number {word} written in {color}, {where}",
    "{color} handwritten digit {digit} at the {where}",
    "a handwritten {word} in {color} near the {where}",
    "digit {digit}, colored {color}, {where} of the frame",
)
VIDEO_TEMPLATES = (
    "{a_color} {digit} moving {direction}",
    "the number {word} in {color} drifting {direction}",
    "{color} handwritten {digit} bouncing around, setting off {direction}",
    "a handwritten {word} colored {color} that moves {direction}",
)


def caption(clip: Clip, rng: np.random.Generator, video: bool, frame_size: int) -> str:
    """A caption naming digit and colour, and the position (images) or the motion (videos)."""
    article = "an" if clip.color[0] in "aeiou" else "a"
    fields = {
        "color": clip.color,
        "a_color": f"{article} {clip.color}",
        "digit": clip.digit,
        "word": DIGIT_WORDS[clip.digit],
    }
    if video:
        fields["direction"] = direction_name(clip.velocity)
        template = VIDEO_TEMPLATES[int(rng.integers(len(VIDEO_TEMPLATES)))]
    else:
        row, col = clip.positions[0]
        fields["where"] = position_name(row, col, frame_size, frame_size // 2)
        template = IMAGE_TEMPLATES[int(rng.integers(len(IMAGE_TEMPLATES)))]
    return template.format(**fields)


def caption_language() -> list[str]:
    """Every caption `caption` can write (about 6,000): the corpus of the tiny cascade's tokenizer."""
    wheres = ["center"] + [f"{r} {c}" for r in ROWS for c in COLS if (r, c) != ("middle", "center")]
    directions = [f"{v} and {h}" for v in ("up", "down") for h in ("left", "right")]
    directions += ["up", "down", "left", "right"]
    texts = []
    for color in COLORS:
        article = "an" if color[0] in "aeiou" else "a"
        for digit, word in enumerate(DIGIT_WORDS):
            fields = {"color": color, "a_color": f"{article} {color}", "digit": digit, "word": word}
            texts += [t.format(**fields, where=w) for t in IMAGE_TEMPLATES for w in wheres]
            texts += [t.format(**fields, direction=d) for t in VIDEO_TEMPLATES for d in directions]
    return texts
