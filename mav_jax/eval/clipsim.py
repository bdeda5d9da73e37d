"""CLIPSIM (Wu et al. 2021, as Make-A-Video reports it on MSR-VTT): the cosine similarity between
each frame's CLIP image embedding and the caption's CLIP text embedding, averaged over the frames
of a video, then over the videos.

A captioned source is a TFDS split with 'video' and 'caption' features (`tfds:NAME[/CONFIG]:SPLIT`)
or a folder of videos with `captions.jsonl` ({"video": FILE, "caption": TEXT} per line), which
`python -m mav_jax.sample` writes beside its outputs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from mav_jax.data.video_io import decode_video
from mav_jax.models.clip import cosine_similarity
from mav_jax.models.frozen_clip import FrozenClip

CAPTIONS_FILE = "captions.jsonl"


@dataclasses.dataclass
class ClipSimResult:
    clipsim: float  # mean over videos
    per_video: list[float]
    names: list[str]


def captioned_videos(source: str) -> Iterator[tuple[str, np.ndarray, str]]:
    """(name, (T, H, W, 3) uint8 video, caption) triples of a captioned source."""
    if source.startswith("tfds:"):
        import tensorflow_datasets as tfds

        try:
            _, name, split = source.split(":")
        except ValueError:
            raise ValueError(
                f"A TFDS source is tfds:NAME[/CONFIG]:SPLIT, got '{source}'."
            ) from None
        data = tfds.data_source(name, split=split, data_dir=os.environ.get("TFDS_DATA_DIR"))
        for i in range(len(data)):
            record = data[i]
            caption = record["caption"]
            caption = caption.decode("utf-8") if isinstance(caption, bytes) else str(caption)
            if not caption:
                raise ValueError(f"{source}[{i}] has no caption; CLIPSIM needs captioned videos.")
            yield f"{source}[{i}]", np.asarray(record["video"], np.uint8), caption
        return
    index = os.path.join(source, CAPTIONS_FILE)
    if not os.path.isfile(index):
        raise FileNotFoundError(
            f"{index} not found: a CLIPSIM folder needs {CAPTIONS_FILE} with one "
            '{"video": FILE, "caption": TEXT} per line (mav_jax.sample writes it).'
        )
    with open(index, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            entry = json.loads(line)
            if not entry.get("caption") or not entry.get("video"):
                raise ValueError(f"{index}:{line_number} needs both 'video' and 'caption'.")
            path = os.path.join(source, entry["video"])
            yield path, decode_video(path), entry["caption"]


def video_clipsim(clip: FrozenClip, video: np.ndarray, caption: str, devices: int) -> float:
    """Mean over the frames of cos(CLIP image embedding, CLIP text embedding)."""
    frames = jnp.asarray(video, jnp.float32) / 127.5 - 1.0  # (T, H, W, 3) in [-1, 1]
    pad = -frames.shape[0] % devices  # whole batches for every device
    frames = jnp.concatenate([frames, jnp.repeat(frames[-1:], pad, axis=0)])
    images = clip.encode_image(frames)[: video.shape[0]]  # (T, E)
    tokens = clip.tokenizer.encode([caption], clip.config.context_length, truncate=True)
    text = clip.encode_text(jnp.asarray(tokens))[0]  # (1, E)
    return float(jnp.mean(cosine_similarity(images, jnp.broadcast_to(text, images.shape))))


def clipsim(
    clip: FrozenClip, source: str, num_videos: int | None = None, progress: bool = False
) -> ClipSimResult:
    """CLIPSIM of the first `num_videos` (default all) videos of `source`."""
    from tqdm import tqdm

    scores, names = [], []
    items = captioned_videos(source)
    for name, video, caption in tqdm(items, total=num_videos, disable=not progress, desc="clipsim"):
        if num_videos is not None and len(scores) >= num_videos:
            break
        scores.append(video_clipsim(clip, video, caption, jax.device_count()))
        names.append(name)
    if num_videos is not None and len(scores) < num_videos:
        raise ValueError(f"{source} has {len(scores)} videos, fewer than the {num_videos} asked.")
    if not scores:
        raise ValueError(f"{source} has no videos.")
    return ClipSimResult(float(np.mean(scores)), scores, names)
