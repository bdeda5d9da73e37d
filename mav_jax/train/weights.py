"""A stage's model and train state built from its config; inference export and weight loading.

The export format itself (`params/` + `config.json`) lives in `mav_jax.exports`, below the
models, so that frozen networks (CLIP) load without the training code; this module adds what
needs a stage: building its model to restore into, and reading a training workdir's EMA.
"""

from __future__ import annotations

import os
import uuid

import ml_collections
from flax import nnx
from jax.sharding import Mesh

from mav_jax import exports
from mav_jax.data import files
from mav_jax.nn import transplant_spatial_params
from mav_jax.parallel import make_mesh, rules_from_config
from mav_jax.parallel.sharding import Rules
from mav_jax.stages import stage_from_config
from mav_jax.train.abstract_state import (  # noqa: F401  (also imported from here)
    abstract_params,
    abstract_train_state,
    make_model_fn,
    optimizer_from_config,
)
from mav_jax.train.checkpoints import Checkpointer
from mav_jax.train.step import sharded_init, train_state_from_params

CHECKPOINTS = "checkpoints"  # under a training workdir


def build_train_state(config, stage, mesh: Mesh):
    """(graphdef, fresh TrainState on `mesh`, optimizer) for `stage` as `config` describes it,
    sharded by the config's logical-axis rules."""
    rules = rules_from_config(config)
    graphdef, params = sharded_init(make_model_fn(stage, config.seed), mesh, rules)
    optimizer = optimizer_from_config(config, params)
    return graphdef, train_state_from_params(params, optimizer, mesh, config.seed), optimizer


def restore_training_ema(
    workdir: str, mesh: Mesh
) -> tuple[int, ml_collections.ConfigDict, nnx.GraphDef, nnx.State]:
    """(step, config, graphdef, EMA params) of the newest readable checkpoint in `workdir`."""
    directory = os.path.join(workdir, CHECKPOINTS)
    ckpt = Checkpointer(directory, async_save=False)
    try:
        steps = ckpt.manager.all_steps()
        if not steps:
            raise FileNotFoundError(
                f"No checkpoint in {directory}; train first (python -m mav_jax.train ...)."
            )
        config = ml_collections.ConfigDict(ckpt.restore_config(max(steps)))
        # Shapes only: building a real state to restore onto compiled and ran the random init
        # (about 10 s for a quickstart U-Net) only to overwrite it.
        graphdef, target, _ = abstract_train_state(config, stage_from_config(config), mesh)
        restored = ckpt.restore_latest(target)
        if restored is None:
            raise ValueError(f"Every checkpoint in {directory} is damaged: {ckpt.damaged}.")
        step, state, _, saved = restored
        return step, ml_collections.ConfigDict(saved), graphdef, state.ema
    finally:
        ckpt.close()


def export_inference(
    workdir: str, output: str, mesh: Mesh | None = None, inputs: dict | None = None
) -> int:
    """Write the EMA parameters and config of `workdir`'s newest checkpoint to `output`.

    The export's source records the workdir, the step, a fresh `id` (so that a run trained from
    this export can tell when it is replaced, even by one of as many steps) and `inputs`: the ids
    of the exports this run was initialised or conditioned from, when the caller knows them.
    """
    mesh = mesh or make_mesh({"fsdp": -1})
    step, config, _, ema = restore_training_ema(workdir, mesh)
    source = {"workdir": workdir, "step": step, "id": uuid.uuid4().hex}
    exports.write_export(output, config, ema, {**source, **({"inputs": inputs} if inputs else {})})
    return step


def load_inference(path: str, mesh: Mesh, rules: Rules | None = None):
    """(config, graphdef, params) of an export, sharded on `mesh` by the logical-axis rules (the
    export config's own table unless `rules` is given)."""
    config = exports.read_config(path)
    rules = rules or rules_from_config(config)
    graphdef, target = abstract_params(stage_from_config(config), mesh, rules)
    return config, graphdef, exports.restore_params(path, target)


def load_weights(path: str, mesh: Mesh):
    """(config, graphdef, params) from an export or, failing that, a training workdir's EMA."""
    if exports.is_export(path):
        return load_inference(path, mesh)
    if files.exists(os.path.join(path, CHECKPOINTS)):
        _, config, graphdef, params = restore_training_ema(path, mesh)
        return config, graphdef, params
    raise FileNotFoundError(
        f"{path} is neither an export ({exports.CONFIG}) nor a training workdir ({CHECKPOINTS}/)."
    )


def initialize_from(path: str, graphdef: nnx.GraphDef, params: nnx.State, mesh: Mesh) -> nnx.State:
    """`params` with the weights of `path` copied in: all of them when the models match, else every
    spatial one (the image -> video step; temporal layers keep their identity initialisation)."""
    _, _, source = load_weights(path, mesh)
    model = nnx.merge(graphdef, params)
    # Same model: every weight copied. Image -> video: temporal layers stay new. Fewer -> more
    # input channels (keyframes -> interpolation): the new channels start at zero.
    # A target without CLIP conditioning leaves the source's conditioning layers out.
    transplant_spatial_params(
        source, model, expand_input_channels=True, drop_embedding_conditioning=True
    )
    return nnx.state(model, nnx.Param)
