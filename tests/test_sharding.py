"""Logical axes -> mesh: the U-Net's parameters shard over 8 fake devices and compute the same."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_conditioning
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from mav_jax.nn import unet_denoise_fn
from mav_jax.parallel import (
    DEFAULT_RULES,
    logical_axes,
    logical_to_mesh_spec,
    make_mesh,
    state_shardings,
)


def test_every_parameter_names_its_logical_axes(video_unet):
    known = set(logical_axes.ALL)
    for path, var in nnx.to_flat_state(nnx.state(video_unet, nnx.Param)):
        names = var.get_metadata().get("out_sharding")
        assert names is not None, f"{path} has no logical axis names"
        assert len(names) == var.get_value().ndim and set(names) <= known, (path, names)


def test_mesh_construction_checks_device_counts():
    assert make_mesh({"data": 2, "fsdp": -1}).shape == {
        "data": 2,
        "fsdp": 4,
        "context": 1,
        "tensor": 1,
    }
    with pytest.raises(ValueError, match="needs 6 devices"):
        make_mesh({"data": 3, "fsdp": 2})
    with pytest.raises(ValueError, match="Unknown mesh axes"):
        make_mesh({"model": 8})
    with pytest.raises(ValueError, match="must be a multiple of num_slices=2"):
        make_mesh({"data": 1, "fsdp": 8, "num_slices": 2})
    with pytest.raises(ValueError, match="devices that know their slice"):
        make_mesh({"data": 2, "fsdp": 4, "num_slices": 2})  # CPU devices have no slice_index


def test_logical_spec_drops_axes_that_do_not_divide():
    mesh = make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    spec = logical_to_mesh_spec(
        ("conv_window", "conv_window", "conv_in", "conv_out"), (3, 3, 16, 32), mesh
    )
    assert spec == PartitionSpec(None, None, "fsdp", None)
    assert logical_to_mesh_spec(("embed", "mlp"), (16, 32), mesh) == PartitionSpec("fsdp", "tensor")
    assert logical_to_mesh_spec(("embed", "mlp"), (3, 32), mesh) == PartitionSpec(None, "tensor")
    assert logical_to_mesh_spec(("batch",), (8,), mesh) == PartitionSpec(("data", "fsdp"))
    with pytest.raises(KeyError, match="no_such_axis"):
        logical_to_mesh_spec(("no_such_axis",), (4,), mesh)


@pytest.mark.parametrize(
    # data only: how a CPU host trains (one device per core, parallel.host_devices)
    "mesh_shape",
    [{"data": 8}, {"data": 2, "fsdp": 4}, {"data": 2, "fsdp": 2, "tensor": 2}],
)
def test_sharded_forward_and_gradient_match_one_device(video_cfg, video_unet, mesh_shape):
    mesh = make_mesh(mesh_shape)
    graphdef, state = nnx.split(video_unet)
    shardings = state_shardings(state, mesh, DEFAULT_RULES)
    sharded_state = jax.device_put(state, shardings)
    split = [s for s in jax.tree.leaves(shardings) if any(p is not None for p in s.spec)]
    conv_kernel = sharded_state["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    if mesh.shape["fsdp"] > 1:  # FSDP really splits the weights
        assert len(split) > len(jax.tree.leaves(shardings)) // 3
        assert conv_kernel.addressable_shards[0].data.size < conv_kernel.size
    else:  # data parallelism replicates them
        assert all(s.is_fully_replicated for s in jax.tree.leaves(shardings))
    if mesh.shape["tensor"] > 1:  # attention heads and MLP widths are split over 'tensor'
        assert any("tensor" in jax.tree.leaves(tuple(s.spec)) for s in split)

    b, f, h, w = 8, 2, 8, 8
    cond = make_conditioning(video_cfg, jax.random.key(0), b, f, h, w)
    t = cond.pop("timesteps")
    x = jax.random.normal(jax.random.key(1), (b, f, h, w, 3))
    batch = NamedSharding(mesh, logical_to_mesh_spec(("batch",), (b,), mesh))
    put = lambda a: jax.device_put(a, NamedSharding(mesh, PartitionSpec(batch.spec[0])))  # noqa: E731
    denoise = unet_denoise_fn(graphdef)

    def loss(s, x, t, cond):
        return jnp.mean(denoise(s, x, t, cond) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    sharded_loss, sharded_grad = jax.jit(jax.value_and_grad(loss), out_shardings=(None, shardings))(
        sharded_state, put(x), put(t), jax.tree.map(put, cond)
    )
    ref_loss, ref_grad = value_and_grad(state, x, t, cond)
    np.testing.assert_allclose(sharded_loss, ref_loss, rtol=1e-5)
    for a, r in zip(jax.tree.leaves(sharded_grad), jax.tree.leaves(ref_grad), strict=True):
        np.testing.assert_allclose(a, r, atol=1e-6, rtol=1e-4)
    kernel_grad = sharded_grad["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    assert kernel_grad.sharding.spec == conv_kernel.sharding.spec
