"""Pretrained OpenAI / OpenCLIP ViT weights -> mav_jax CLIP parameters, from local files only.

Both publish the same PyTorch state-dict layout (`visual.conv1.weight`, `transformer.resblocks.N.
attn.in_proj_weight`, ...). This module maps it onto `mav_jax.models.clip.CLIP`'s parameters,
infers the `ClipConfig` from the tensor shapes (heads = width / 64, as every published ViT CLIP
uses), and can write the result as an export directory that `--config.clip_from` accepts:

    python -m mav_jax.models.clip_convert --checkpoint=open_clip_model.safetensors \
        --bpe=bpe_simple_vocab_16e6.txt.gz --output=exports/clip_vit_b32 [--activation=gelu]

`.safetensors` and `.npz` files load without PyTorch; `.pt`/`.bin` (torch.save / OpenAI's JIT
archives) need `torch` installed.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

import numpy as np
from flax import nnx

from mav_jax.data import files
from mav_jax.models.clip import CLIP, ClipConfig

HEAD_DIM = 64  # every published CLIP ViT uses 64 features per head


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """A checkpoint file -> {name: float32 numpy array}."""
    if not files.exists(path):
        raise FileNotFoundError(f"CLIP checkpoint not found: {path}.")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        tensors = load_file(path)
    elif path.endswith(".npz"):
        tensors = dict(np.load(path))
    elif path.endswith((".pt", ".bin", ".pth")):
        try:
            import torch
        except ImportError as e:
            raise ImportError(
                f"{path} is a PyTorch file; install torch, or convert it to .safetensors first."
            ) from e
        try:  # OpenAI's releases are TorchScript archives
            tensors = torch.jit.load(path, map_location="cpu").state_dict()
        except RuntimeError:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
            tensors = tensors.get("state_dict", tensors)
        tensors = {k.removeprefix("module."): v.float().numpy() for k, v in tensors.items()}
    else:
        raise ValueError(f"Unknown CLIP checkpoint format: {path} (.safetensors, .npz, .pt, .bin).")
    return {k: np.asarray(v, np.float32) for k, v in tensors.items()}


def _count_blocks(state: Mapping[str, np.ndarray], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"resblocks\.(\d+)\.")
    return 1 + max(int(m.group(1)) for k in state if (m := pattern.match(k)))


def config_from_state_dict(
    state: Mapping[str, np.ndarray], activation: str = "quick_gelu", **overrides
) -> ClipConfig:
    """The ClipConfig a state dict was trained with (its shapes say everything but the activation)."""
    if "visual.conv1.weight" not in state:
        raise ValueError(
            "Not a ViT CLIP state dict (no visual.conv1.weight); ResNet CLIPs are not supported."
        )
    vision_width, _, patch, _ = state["visual.conv1.weight"].shape
    grid = int(round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5))
    text_width = state["ln_final.weight"].shape[0]
    values = dict(
        embed_dim=state["text_projection"].shape[1],
        image_size=grid * patch,
        patch_size=patch,
        vision_width=vision_width,
        vision_layers=_count_blocks(state, "visual.transformer."),
        vision_heads=vision_width // HEAD_DIM,
        context_length=state["positional_embedding"].shape[0],
        vocab_size=state["token_embedding.weight"].shape[0],
        text_width=text_width,
        text_layers=_count_blocks(state, "transformer."),
        text_heads=text_width // HEAD_DIM,
        activation=activation,
    )
    return ClipConfig(**{**values, **overrides})


def _block(state: Mapping[str, np.ndarray], prefix: str, heads: int) -> dict:
    """One residual attention block -> our TransformerBlock's parameters."""
    get = lambda name: state[prefix + name]  # noqa: E731
    width = get("ln_1.weight").shape[0]
    head_dim = width // heads
    qkv_w = get("attn.in_proj_weight").reshape(3, width, width)  # (3, out, in)
    qkv_b = get("attn.in_proj_bias").reshape(3, width)
    attention = {
        name: {
            "kernel": qkv_w[i].T.reshape(width, heads, head_dim),
            "bias": qkv_b[i].reshape(heads, head_dim),
        }
        for i, name in enumerate(("query", "key", "value"))
    }
    attention["out"] = {
        "kernel": get("attn.out_proj.weight").T.reshape(heads, head_dim, width),
        "bias": get("attn.out_proj.bias"),
    }
    return {
        "attention_norm": {"scale": get("ln_1.weight"), "bias": get("ln_1.bias")},
        "attention": attention,
        "mlp_norm": {"scale": get("ln_2.weight"), "bias": get("ln_2.bias")},
        "mlp": {
            "hidden": {"kernel": get("mlp.c_fc.weight").T, "bias": get("mlp.c_fc.bias")},
            "out": {"kernel": get("mlp.c_proj.weight").T, "bias": get("mlp.c_proj.bias")},
        },
    }


def _transformer(state: Mapping[str, np.ndarray], prefix: str, layers: int, heads: int) -> dict:
    """A tower's residual blocks -> our Transformer's parameters."""
    return {"blocks": {i: _block(state, f"{prefix}resblocks.{i}.", heads) for i in range(layers)}}


def _norm(state, name: str) -> dict:
    return {"scale": state[name + ".weight"], "bias": state[name + ".bias"]}


def convert_state_dict(state: Mapping[str, np.ndarray], config: ClipConfig) -> dict:
    """The nested {path: array} tree of `CLIP(config)`'s parameters."""
    text = {
        "token_embedding": {"embedding": state["token_embedding.weight"]},
        "positional_embedding": state["positional_embedding"],
        "transformer": _transformer(state, "transformer.", config.text_layers, config.text_heads),
        "final_norm": _norm(state, "ln_final"),
        "projection": state["text_projection"],
    }
    image = {
        "patch_embedding": {"kernel": state["visual.conv1.weight"].transpose(2, 3, 1, 0)},
        "class_embedding": state["visual.class_embedding"],
        "positional_embedding": state["visual.positional_embedding"],
        "pre_norm": _norm(state, "visual.ln_pre"),
        "transformer": _transformer(
            state, "visual.transformer.", config.vision_layers, config.vision_heads
        ),
        "post_norm": _norm(state, "visual.ln_post"),
        "projection": state["visual.proj"],
    }
    return {"text": text, "image": image, "logit_scale": state["logit_scale"].reshape(())}


def load_into(model: CLIP, state: Mapping[str, np.ndarray]) -> CLIP:
    """Copy a state dict into `model` in place, checking every shape; returns the model."""
    params = nnx.state(model, nnx.Param)
    arrays = convert_state_dict(state, model.config)
    flat_target = dict(nnx.to_flat_state(params))
    flat_source = {tuple(path): value for path, value in _flatten(arrays)}
    missing = sorted(set(flat_target) - set(flat_source))
    if missing:
        raise ValueError(f"The converted checkpoint lacks {missing[:5]}...")
    for path, variable in flat_target.items():
        value = flat_source[path]
        if value.shape != variable.shape:
            raise ValueError(
                f"{'.'.join(map(str, path))}: checkpoint shape {value.shape}, model "
                f"{variable.shape}"
            )
        variable.set_value(value)
    nnx.update(model, params)
    return model


def _flatten(tree, prefix=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flatten(value, (*prefix, key))
    else:
        yield prefix, np.asarray(tree, np.float32)


def convert_to_export(
    checkpoint: str, bpe: str, output: str, activation: str = "quick_gelu"
) -> ClipConfig:
    """Write `checkpoint` (with OpenAI's BPE vocabulary `bpe`) as a clip export at `output`."""
    import ml_collections
    from flax import nnx

    from mav_jax.exports import write_export
    from mav_jax.models.frozen_clip import TOKENIZER_FILE
    from mav_jax.models.tokenizer import ClipTokenizer

    state = load_state_dict(checkpoint)
    config = config_from_state_dict(state, activation=activation)
    tokenizer = ClipTokenizer.from_openai_bpe(bpe)
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(
            f"The vocabulary has {tokenizer.vocab_size} tokens but the checkpoint's "
            f"embedding table {config.vocab_size}."
        )
    model = load_into(CLIP(config, rngs=nnx.Rngs(0)), state)
    record = ml_collections.ConfigDict(
        {
            "stage": "clip",
            "variant": "converted",
            "clip": dataclasses.asdict(config),
            "clip_tokenizer": TOKENIZER_FILE,
        }
    )
    write_export(output, record, nnx.state(model, nnx.Param), {"converted": checkpoint})
    tokenizer.save(os.path.join(output, TOKENIZER_FILE))
    return config


def main(argv) -> None:
    del argv
    from absl import logging

    config = convert_to_export(_CHECKPOINT.value, _BPE.value, _OUTPUT.value, _ACTIVATION.value)
    logging.info("Wrote %s: %s", _OUTPUT.value, config)


if __name__ == "__main__":
    from absl import app, flags

    _CHECKPOINT = flags.DEFINE_string("checkpoint", None, "OpenAI/OpenCLIP ViT checkpoint file.")
    _BPE = flags.DEFINE_string("bpe", None, "OpenAI's bpe_simple_vocab_16e6.txt.gz.")
    _OUTPUT = flags.DEFINE_string("output", None, "Export directory to write.")
    _ACTIVATION = flags.DEFINE_enum(
        "activation",
        "quick_gelu",
        ["quick_gelu", "gelu"],
        "quick_gelu: OpenAI's models; gelu: most LAION OpenCLIP ones.",
    )
    flags.mark_flags_as_required(["checkpoint", "bpe", "output"])
    app.run(main)
