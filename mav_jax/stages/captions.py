"""The image-text input pipeline of the CLIP and prior stages: a frame and its caption's tokens.

It lives with the stages, not in `data`, because tokenizing needs CLIP's tokenizer (a model).
"""

from __future__ import annotations

import grain.python as grain
import numpy as np

from mav_jax.data.augment import CropFlipScale
from mav_jax.data.clips import SampleClip
from mav_jax.data.stage_inputs import SINGLE_FRAME
from mav_jax.models.tokenizer import ClipTokenizer

# Captions repeat across epochs (and, in Moving Digits, across records); tokenizing each anew was
# about half of the CLIP stage's input time.
CAPTION_CACHE_SIZE = 1 << 16


class Tokenize(grain.MapTransform):
    """Adds 'tokens' (context_length,) int32: the caption through CLIP's tokenizer, truncated
    (keeping the end token) when a caption is longer than the context, as CLIP trains."""

    def __init__(self, tokenizer_spec: str, context_length: int):
        self.tokenizer_spec = tokenizer_spec
        self.context_length = context_length
        self._tokenizer = None  # built on first use, so the transform pickles to Grain workers
        self._cache: dict[str, np.ndarray] = {}

    def map(self, element: dict) -> dict:
        if self._tokenizer is None:
            self._tokenizer = ClipTokenizer.from_spec(self.tokenizer_spec)
        caption = element["caption"]
        caption = caption.decode("utf-8") if isinstance(caption, bytes) else str(caption)
        tokens = self._cache.get(caption)
        if tokens is None:
            tokens = self._tokenizer.encode([caption], self.context_length, truncate=True)[0]
            tokens.setflags(write=False)  # every element with this caption shares it
            if len(self._cache) >= CAPTION_CACHE_SIZE:
                self._cache.clear()
            self._cache[caption] = tokens
        return {**element, "tokens": tokens}


def captioned_image_operations(resolution: int, tokenizer_spec: str, context_length: int) -> list:
    """The image-text pipeline of the CLIP and prior stages: one frame of each record, resized and
    scaled to `resolution` (B, 1, H, W, 3), and its caption as 'tokens' (B, L)."""
    return [
        SampleClip(SINGLE_FRAME, decode_size=resolution),
        CropFlipScale(resolution, flip=False),
        Tokenize(tokenizer_spec, context_length),
    ]
