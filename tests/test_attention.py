"""Attention kernels by backend: every implementation this machine can run equals XLA's attention
in outputs and gradients for each mask the models use (splash through Pallas interpret mode), and
bad choices are config errors before anything compiles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mav_jax.models.clip import ClipConfig
from mav_jax.models.prior import PriorConfig
from mav_jax.nn import UNetConfig
from mav_jax.nn.attention_kernels import attend, resolve_attention_impl
from mav_jax.parallel import make_mesh
from mav_jax.parallel.mesh_context import use_mesh

# (queries, keys, mask kind): the U-Net's spatial (8x8 tokens), temporal (5 frames) and cross
# (4 context tokens) attention, CLIP's causal text tower (77 tokens), the prior's padding mask.
CASES = {
    "spatial": (64, 64, None),
    "temporal": (5, 5, None),
    "cross": (64, 4, None),
    "causal": (77, 77, "causal"),
    "padding": (20, 20, "padding"),
}


def _inputs(queries: int, keys: int, kind: str | None):
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(queries * 100 + keys), 3)
    q = jax.random.normal(kq, (8, queries, 2, 16))
    k = jax.random.normal(kk, (8, keys, 2, 16))
    v = jax.random.normal(kv, (8, keys, 2, 16))
    mask = None
    if kind == "padding":  # the prior's: each example's first L keys are real
        mask = jnp.arange(keys)[None] < jnp.arange(3, 3 + 8 * 2, 2)[:, None]
    return q, k, v, mask


def _loss_and_grads(impl: str, q, k, v, mask, causal: bool):
    def loss(q, k, v):
        out = attend(q, k, v, mask=mask, causal=causal, impl=impl, interpret=True)
        return jnp.sum(out * jnp.cos(out)), out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
    return out, grads


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", ["splash", "auto"])
def test_each_available_kernel_equals_xla_in_outputs_and_gradients(case, impl):
    queries, keys, kind = CASES[case]
    q, k, v, mask = _inputs(queries, keys, kind)
    causal = kind == "causal"
    want, want_grads = _loss_and_grads("xla", q, k, v, mask, causal)
    got, got_grads = _loss_and_grads(impl, q, k, v, mask, causal)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=1e-4)


def test_splash_runs_per_shard_under_a_mesh():
    """A Mosaic kernel cannot be partitioned automatically: under a mesh, splash runs through
    shard_map over the batch axes, and still equals XLA's attention."""
    q, k, v, mask = _inputs(64, 64, "padding")
    mesh = make_mesh({"data": 2, "fsdp": 4})
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(("data", "fsdp")))
    q, k, v, mask = (jax.device_put(x, sharding) for x in (q, k, v, mask))
    with use_mesh(mesh):
        splash = jax.jit(lambda q, k, v, m: attend(q, k, v, mask=m, impl="splash", interpret=True))(
            q, k, v, mask
        )
    want = attend(q, k, v, mask=mask, impl="xla")
    np.testing.assert_allclose(splash, want, atol=2e-5, rtol=1e-5)
    assert splash.sharding.is_equivalent_to(sharding, splash.ndim)


def test_auto_picks_the_fused_kernel_each_backend_has():
    mesh = make_mesh({"fsdp": 8})
    with use_mesh(mesh):  # splash runs per shard only inside use_mesh
        assert resolve_attention_impl("auto", "tpu", shortest=256) == "splash"
        assert (
            resolve_attention_impl("auto", "tpu", shortest=16) == "xla"
        )  # padding would cost more
        assert resolve_attention_impl("auto", "tpu", shortest=76) == "xla"
        # ↑F's paper config asks for splash from 64 tokens (its 76-frame temporal attention).
        assert resolve_attention_impl("auto", "tpu", shortest=76, splash_min_tokens=64) == "splash"
        assert resolve_attention_impl("auto", "gpu", shortest=76, splash_min_tokens=64) == "cudnn"
    assert resolve_attention_impl("auto", "tpu", shortest=256) == "xla"  # 8 devices, no mesh
    assert resolve_attention_impl("auto", "gpu") == "cudnn"
    assert resolve_attention_impl("auto", "cpu") == "xla"
    assert resolve_attention_impl("xla", "tpu") == "xla"


@pytest.mark.parametrize(
    "impl, message",
    [("flash", "attention_impl must be one of"), ("cudnn", "needs an NVIDIA GPU")],
)
def test_bad_attention_impls_are_config_errors_before_compiling(impl, message):
    for build in (
        lambda: UNetConfig(attention_impl=impl),
        lambda: ClipConfig(attention_impl=impl),
        lambda: PriorConfig(attention_impl=impl),
    ):
        with pytest.raises(ValueError, match=message):
            build()


def test_a_splash_threshold_below_one_token_is_a_config_error():
    with pytest.raises(ValueError, match="splash_min_tokens must be >= 1, got 0"):
        UNetConfig(splash_min_tokens=0)
