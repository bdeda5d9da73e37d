"""CLIP's zero-shot retrieval on held-out image-caption pairs: how often an image's nearest
caption (by cosine) is its own, and a caption's nearest image is its own. A caption that another
example shares counts as its own (Moving Digits repeats captions), so the chance level is the
share of examples with each caption, not 1 / N."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from mav_jax.models.clip import unit
from mav_jax.train.evaluators.base import EvalContext, heldout_batch, with_defaults

DEFAULTS = {"every": 0, "split": "eval", "num_examples": 32}


class Retrieval:
    """Metrics `image_to_text` and `text_to_image` (top-1 accuracy) and `chance`."""

    DEFAULTS: ClassVar[dict] = DEFAULTS
    COUNT_FIELD: ClassVar[str] = "num_examples"  # held-out examples split over the batch axes

    @staticmethod
    def problems(settings, config) -> list[str]:
        _, found = with_defaults(settings, DEFAULTS)
        if config.get("stage") != "clip":
            found.append("retrieval evaluates a CLIP: only the clip stage has it")
        return found

    def __init__(self, label: str, settings, context: EvalContext):
        values, _ = with_defaults(settings, DEFAULTS)
        self.label, self.every = label, int(values["every"])
        self.batch, _ = heldout_batch(context, values["split"], int(values[self.COUNT_FIELD]))
        graphdef = context.graphdef

        def accuracies(params, batch):
            model = nnx.merge(graphdef, params)
            images = unit(model.encode_image(batch["video"][:, 0]))  # (N, E)
            texts = unit(model.encode_text(batch["tokens"]))  # (N, E)
            similarity = images @ texts.T  # (N, N)
            tokens = batch["tokens"]
            same = jnp.all(tokens[:, None, :] == tokens[None, :, :], axis=-1)  # (N, N)
            rows = jnp.arange(tokens.shape[0])
            image_to_text = same[rows, jnp.argmax(similarity, axis=1)]
            text_to_image = same[jnp.argmax(similarity, axis=0), rows]
            return jnp.stack([image_to_text.mean(), text_to_image.mean(), same.mean(axis=1).mean()])

        replicated = NamedSharding(context.mesh, PartitionSpec())
        self._accuracies = jax.jit(accuracies, out_shardings=replicated)

    def evaluate(self, params: nnx.State, step: int) -> dict[str, float]:
        del step
        values = np.asarray(jax.device_get(self._accuracies(params, self.batch)), np.float64)
        return dict(
            zip(("image_to_text", "text_to_image", "chance"), map(float, values), strict=True)
        )
