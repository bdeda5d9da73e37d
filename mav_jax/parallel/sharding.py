"""Map logical axis names onto a device mesh and shard NNX module state.

The rule table is a sequence of `(logical_name, mesh_axes)` pairs, as in big_vision / MaxText.
A dimension whose size is not divisible by its mesh axes is replicated instead (small layers
such as the 3-channel input conv cannot be split over 4 devices); this keeps one rule table usable
from a tiny CPU config up to the paper configs.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mav_jax.parallel import logical_axes as ax

# 'context' splits a video's frames (spatial layers work frame by frame, so they need no
# communication; the temporal layers exchange frames: `nn.pseudo3d`).
MESH_AXES = ("data", "fsdp", "context", "tensor")
BATCH_AXES = ("data", "fsdp")  # a global batch is split over both

Rules = Sequence[tuple[str, str | tuple[str, ...] | None]]


def batch_shards(mesh: Mesh) -> int:
    """How many ways a global batch is split on `mesh` (the product of its BATCH_AXES)."""
    return int(np.prod([mesh.shape[a] for a in BATCH_AXES]))


# FSDP over the input side of every weight; tensor parallelism over attention heads and MLP width.
# Conv kernels are FSDP-only: with jax/jaxlib 0.10.2, XLA:CPU's SPMD partitioner returns wrong
# gradients for two chained 3x3 convs whose kernels are split over both 'fsdp' and 'tensor' at
# small spatial sizes (4x4), while the loss is right; FSDP-only kernels are exact. A config may
# still map CONV_OUT to 'tensor' in its own rule table.
DEFAULT_RULES: Rules = (
    (ax.BATCH, ("data", "fsdp")),
    (ax.EMBED, "fsdp"),
    (ax.CONV_IN, "fsdp"),
    (ax.CONV_OUT, None),
    (ax.MLP, "tensor"),
    (ax.HEADS, "tensor"),
    (ax.HEAD_DIM, None),
    (ax.COND, "fsdp"),
    (ax.VOCAB, None),
    (ax.CONV_WINDOW, None),
    (ax.NORM, None),
    (ax.FRAMES, "context"),
    (ax.PIXELS, ("data", "fsdp", "context")),
    (ax.HEIGHT, None),
    (ax.WIDTH, None),
    (ax.TOKENS, None),
)


def parse_mesh(text: str) -> dict[str, int]:
    """'fsdp:64,data:2' -> {'fsdp': 64, 'data': 2}."""
    mesh = {}
    for part in filter(None, text.split(",")):
        name, _, size = part.partition(":")
        if not size.isdigit() or int(size) < 1:
            raise ValueError(f"--mesh entries are AXIS:SIZE with SIZE >= 1, got '{part}'.")
        mesh[name.strip()] = int(size)
    return mesh


def context_problems(mesh_shape: dict[str, int], num_frames: int) -> list[str]:
    """What is wrong with splitting `num_frames` frames per clip over the mesh's `context` axis."""
    context = int(mesh_shape.get("context", 1))
    if context > 1 and num_frames % context:
        return [
            f"the mesh's context axis ({context}) must divide the stage's {num_frames} frames per "
            "clip (each device takes num_frames / context of them): change mesh.context"
        ]
    return []


def make_mesh(shape: dict[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh with axes MESH_AXES; `shape` gives sizes (missing axes are 1).

    A size of -1 takes all remaining devices. `num_slices` (in `shape`, default 1) > 1 builds a
    multi-slice mesh: the `data` axis spans the slices (data-parallel gradients are the only
    traffic over the slow data-centre network), every other axis stays inside a slice (ICI).
    """
    shape = dict(shape)
    num_slices = int(shape.pop("num_slices", 1))
    unknown = set(shape) - set(MESH_AXES)
    if unknown:
        raise ValueError(f"Unknown mesh axes {sorted(unknown)}; use only {MESH_AXES}.")
    devices = list(devices if devices is not None else jax.devices())
    sizes = [int(shape.get(name, 1)) for name in MESH_AXES]
    if sizes.count(-1) > 1:
        raise ValueError(f"At most one mesh axis may be -1, got {shape}.")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"{len(devices)} devices cannot be split into mesh {shape}.")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ValueError(
            f"Mesh {dict(zip(MESH_AXES, sizes, strict=True))} needs {int(np.prod(sizes))} devices, "
            f"but {len(devices)} are available."
        )
    if num_slices > 1:
        return _multi_slice_mesh(sizes, devices, num_slices)
    return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES)


def _multi_slice_mesh(sizes: list[int], devices: list, num_slices: int) -> Mesh:
    from jax.experimental import mesh_utils

    data = MESH_AXES.index("data")
    if sizes[data] % num_slices:
        raise ValueError(
            f"The data axis ({sizes[data]}) must be a multiple of num_slices={num_slices}: "
            "it is the axis that spans the slices."
        )
    if not all(hasattr(d, "slice_index") for d in devices):
        raise ValueError(
            f"num_slices={num_slices} needs devices that know their slice (multi-slice TPUs); "
            "these do not."
        )
    per_slice = list(sizes)
    per_slice[data] //= num_slices
    across = [num_slices if i == data else 1 for i in range(len(sizes))]
    grid = mesh_utils.create_hybrid_device_mesh(per_slice, across, devices)
    return Mesh(grid, MESH_AXES)


def logical_to_mesh_spec(
    logical: Sequence[str | None] | None,
    shape: Sequence[int],
    mesh: Mesh,
    rules: Rules = DEFAULT_RULES,
) -> PartitionSpec:
    """PartitionSpec for an array of `shape` whose dimensions carry `logical` names.

    Mesh axes already used by an earlier dimension, or that do not divide the dimension, are
    dropped (that dimension is then replicated over them).
    """
    if logical is None:
        return PartitionSpec()
    if len(logical) != len(shape):
        raise ValueError(f"Logical axes {tuple(logical)} do not match array shape {tuple(shape)}.")
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for name, size in zip(logical, shape, strict=True):
        if name is not None and name not in table:
            raise KeyError(f"No sharding rule for logical axis '{name}'; add it to the rule table.")
        target = table.get(name) if name is not None else None
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        kept = []
        for axis in axes:
            if axis in used or axis not in mesh.shape:
                continue
            if size % (int(np.prod([mesh.shape[a] for a in kept])) * mesh.shape[axis]) == 0:
                kept.append(axis)
        used.update(kept)
        spec.append(None if not kept else kept[0] if len(kept) == 1 else tuple(kept))
    return PartitionSpec(*spec)


def state_shardings(state: nnx.State, mesh: Mesh, rules: Rules = DEFAULT_RULES) -> nnx.State:
    """A tree of NamedShardings matching `state` (arrays or ShapeDtypeStructs), from its metadata."""

    def one(var):
        logical = var.get_metadata().get("out_sharding")
        return NamedSharding(
            mesh, logical_to_mesh_spec(logical, jax.numpy.shape(var.get_value()), mesh, rules)
        )

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def shard_module_state(module: nnx.Module, mesh: Mesh, rules: Rules = DEFAULT_RULES) -> nnx.Module:
    """Place every variable of `module` on `mesh` according to its logical axes (in place)."""
    state = nnx.state(module)
    shardings = state_shardings(state, mesh, rules)
    nnx.update(module, jax.device_put(state, shardings))
    return module


def rules_from_config(config) -> Rules:
    """The logical-axis rule table a config declares (`config.sharding_rules`, big_vision's
    pattern: a list of [logical_name, mesh_axes] pairs), or DEFAULT_RULES where it declares none.

    A declared table replaces the default whole, so every logical name must appear in it.
    """
    declared = config.get("sharding_rules")
    if not declared:
        return DEFAULT_RULES
    rules = []
    for entry in declared:
        name, target = entry
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        if name not in ax.ALL:
            raise ValueError(
                f"config.sharding_rules names logical axis '{name}', which no layer uses; "
                f"the names are {list(ax.ALL)}."
            )
        if unknown := [a for a in axes if a not in MESH_AXES]:
            raise ValueError(
                f"config.sharding_rules maps '{name}' to mesh axes {unknown}; the mesh axes "
                f"are {list(MESH_AXES)}."
            )
        rules.append((name, target if isinstance(target, str) or target is None else axes))
    if missing := [n for n in ax.ALL if n not in dict(rules)]:
        raise ValueError(
            f"config.sharding_rules has no rule for {missing}; a declared table replaces the "
            "default whole, so give each logical axis a rule (None: replicated)."
        )
    return tuple(rules)


def abstract_model_params(build_model, mesh: Mesh, rules: Rules = DEFAULT_RULES):
    """(graphdef, params as ShapeDtypeStructs carrying their shardings on `mesh`) of the module
    `build_model()` makes: a restore or compile target with no parameter memory allocated."""
    graphdef, abstract = nnx.split(nnx.eval_shape(build_model), nnx.Param)
    params = jax.tree.map(
        lambda var, sharding: var.replace(
            value=jax.ShapeDtypeStruct(var.shape, var.dtype, sharding=sharding)
        ),
        abstract,
        state_shardings(abstract, mesh, rules),
        is_leaf=lambda x: isinstance(x, nnx.Variable),
    )
    return graphdef, params
