"""Orbax checkpoints: keep-N, exact restore with iterator state and config, damaged-latest fallback,
restore onto another mesh shape."""

import jax
import numpy as np
import pytest
from flax import nnx

from mav_jax.nn import SpatioTemporalUNet, UNetConfig
from mav_jax.parallel import make_mesh
from mav_jax.train.checkpoints import Checkpointer, abstract_like
from mav_jax.train.optimizer import make_optimizer
from mav_jax.train.step import init_train_state

CFG = UNetConfig(
    base_channels=16, channel_mults=(1,), num_res_blocks=1, attention_levels=(0,), num_heads=2
)


@pytest.fixture(scope="module")
def states():
    """Three distinct train states on a data=2 x fsdp=4 mesh."""
    mesh = make_mesh({"data": 2, "fsdp": 4})
    optimizer = make_optimizer(1e-3, 10)
    out = []
    for seed in range(3):
        _, state = init_train_state(
            SpatioTemporalUNet(CFG, rngs=nnx.Rngs(seed)), optimizer, mesh, seed
        )
        out.append(state.replace(step=state.step + seed + 1))
    return out


def _equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_keeps_the_newest_and_restores_exactly(tmp_path, states, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)  # a relative workdir, as `--workdir=runs/x` gives
    ckpt = Checkpointer(tmp_path.name, max_to_keep=2, save_interval_steps=1)
    for step, state in enumerate(states, start=1):
        ckpt.save(step, state, {"iterator": f"state-{step}"}, {"stage": "keyframes"})
    ckpt.wait()
    assert ckpt.manager.all_steps() == [2, 3]
    # Orbax's array metadata is still written (the handler only changes when arrays are sliced).
    assert list((tmp_path / "3" / "state" / "array_metadatas").iterdir())
    step, state, data, config = ckpt.restore_latest(abstract_like(states[0]))
    assert step == 3 and data == {"iterator": "state-3"} and config == {"stage": "keyframes"}
    assert _equal(state, states[2])
    kernel = state.params["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    assert (
        kernel.sharding.spec
        == states[2].params["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...].sharding.spec
    )
    ckpt.close()


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(tmp_path, states):
    ckpt = Checkpointer(str(tmp_path), max_to_keep=3, save_interval_steps=1)
    for step, state in enumerate(states[:2], start=1):
        ckpt.save(step, state, {}, {})
    ckpt.wait()
    for path in (tmp_path / "2" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    step, state, _, _ = ckpt.restore_latest(abstract_like(states[0]))
    assert step == 1 and _equal(state, states[0])
    assert [s for s, _ in ckpt.damaged] == [2]
    ckpt.close()


def test_restores_onto_another_mesh_shape_and_a_fresh_directory_is_empty(tmp_path, states):
    ckpt = Checkpointer(str(tmp_path / "run"), save_interval_steps=1)
    assert ckpt.restore_latest(abstract_like(states[0])) is None
    ckpt.save(5, states[0], {}, {})
    ckpt.wait()
    other = make_mesh({"fsdp": 8})
    _, target = init_train_state(
        SpatioTemporalUNet(CFG, rngs=nnx.Rngs(9)), make_optimizer(1e-3, 10), other, 9
    )
    step, state, _, _ = ckpt.restore_latest(abstract_like(target))
    assert step == 5 and _equal(state, states[0])
    leaf = state.params["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    assert leaf.sharding.mesh.shape["fsdp"] == 8
    ckpt.close()
