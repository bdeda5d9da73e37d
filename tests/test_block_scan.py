"""Scanned blocks and remat policies: the same network, outputs and gradients, at the same paths."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FULL_CONDITIONING, make_conditioning
from flax import nnx

from mav_jax.models.prior import DiffusionPrior, PriorConfig
from mav_jax.nn import SpatioTemporalUNet, transplant_spatial_params, unet_denoise_fn
from mav_jax.state_paths import flat_params

# Two res blocks per level: the down path's and the up path's rows of identical blocks (with and
# without attention, with skip connections) are what the scan stacks.
CFG = FULL_CONDITIONING.replace(num_res_blocks=2, dropout=0.1)
# One attending level of three blocks: down is one row of 3, up one row of 4 (skip connections
# included); cheaper to compile than CFG's two levels.
ONE_LEVEL = FULL_CONDITIONING.replace(
    channel_mults=(1,), attention_levels=(0,), num_res_blocks=3, dropout=0.1
)


def _rows(cfg):
    model = nnx.eval_shape(lambda: SpatioTemporalUNet(cfg, rngs=nnx.Rngs(0)))
    return [len(row) for layers in (model.down, model.up) for row in model._rows(layers)]


def test_rows_group_only_identical_consecutive_blocks():
    assert _rows(CFG) == [1] * 12  # unscanned: one layer a row
    rows = _rows(CFG.replace(scan_blocks=True))
    # down: [2 blocks] downsample [block 16->32] [block 32->32]; up: [2 x (64->32)] [48->32]
    # upsample [48->16] [2 x (32->16)]
    assert rows == [2, 1, 1, 1, 2, 1, 1, 1, 2]


@pytest.fixture(scope="module")
def unrolled_and_scanned():
    assert _rows(ONE_LEVEL.replace(scan_blocks=True)) == [3, 4]
    model = SpatioTemporalUNet(ONE_LEVEL, rngs=nnx.Rngs(3))
    graphdef, state = nnx.split(model)
    scanned = SpatioTemporalUNet(
        ONE_LEVEL.replace(scan_blocks=True, remat="full"), rngs=nnx.Rngs(3)
    )
    return model, scanned, graphdef, nnx.graphdef(scanned), state


def test_scanned_unet_equals_unrolled_in_outputs_and_gradients(unrolled_and_scanned):
    model, scanned, graphdef, scanned_graphdef, state = unrolled_and_scanned
    # The parameters live at the same paths: checkpoints, the transplant and temporal-only
    # training (which select by path) cannot tell the two apart.
    assert flat_params(model).keys() == flat_params(scanned).keys()
    cond = make_conditioning(ONE_LEVEL, jax.random.key(1), 2, 3, 8, 8)
    t = cond.pop("timesteps")
    x = jax.random.normal(jax.random.key(2), (2, 3, 8, 8, 3))
    # Temporal layers away from the identity, so the temporal conv and attention both matter.
    state = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(4), p.shape), state)

    def loss(state, gd):
        out = nnx.merge(gd, state)(x, t, **cond, dropout_key=jax.random.key(5), deterministic=False)
        return jnp.mean(out**2)

    value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    plain_loss, plain_grads = value_and_grad(state, graphdef)
    scan_loss, scan_grads = value_and_grad(state, scanned_graphdef)
    np.testing.assert_allclose(scan_loss, plain_loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(plain_grads), jax.tree.leaves(scan_grads), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=1e-5)


def test_scanned_video_unet_at_init_is_the_image_unet_per_frame(unrolled_and_scanned):
    _, scanned, *_ = unrolled_and_scanned
    image = SpatioTemporalUNet(
        ONE_LEVEL.replace(temporal=False, fps_conditioning=False), rngs=nnx.Rngs(1)
    )
    video = nnx.clone(scanned)
    transplant_spatial_params(nnx.state(image, nnx.Param), video)
    cond = make_conditioning(ONE_LEVEL, jax.random.key(6), 1, 3, 8, 8)
    t = cond.pop("timesteps")
    x = jax.random.normal(jax.random.key(7), (1, 3, 8, 8, 3))
    video_out = unet_denoise_fn(nnx.graphdef(video))(nnx.state(video), x, t, cond)
    image_cond = {
        "embedding": jnp.repeat(cond["embedding"], 3, axis=0),
        "noise_aug_level": jnp.repeat(cond["noise_aug_level"], 3, axis=0),
        "extra": cond["extra"].reshape(3, 1, 8, 8, -1),
    }
    image_out = unet_denoise_fn(nnx.graphdef(image))(
        nnx.state(image), x.reshape(3, 1, 8, 8, 3), jnp.repeat(t, 3), image_cond
    )
    np.testing.assert_allclose(video_out, image_out.reshape(video_out.shape), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("remat", ["save_dots", "offload"])
def test_remat_policies_keep_the_gradients(remat):
    """Every policy recomputes what it does not keep, to the same gradients (a transformer: the
    U-Net's `full` policy is pinned in test_unet)."""
    cfg = PriorConfig(embed_dim=8, text_width=8, context_length=4, width=16, depth=2, num_heads=2)
    tokens = jax.random.normal(jax.random.key(0), (2, 4, 16))  # (N, T, width)

    def grads(cfg):
        model = DiffusionPrior(cfg, rngs=nnx.Rngs(0))
        graphdef, state = nnx.split(model)

        def loss(state):
            out = nnx.merge(graphdef, state).transformer(tokens)
            return jnp.mean(out**2)

        return jax.jit(jax.grad(loss))(state)

    if remat == "offload" and "pinned_host" not in {
        m.kind for m in jax.devices()[0].addressable_memories()
    }:
        pytest.skip("this backend has no host memory to offload to")
    plain = grads(cfg)
    for scan in (False, True):
        other = grads(dataclasses.replace(cfg, remat=remat, scan_blocks=scan))
        for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(other), strict=True):
            np.testing.assert_allclose(b, a, atol=1e-6, rtol=1e-5)


def test_an_unknown_remat_policy_is_a_config_error():
    with pytest.raises(ValueError, match="remat must be one of"):
        FULL_CONDITIONING.replace(remat="sometimes")
    with pytest.raises(ValueError, match="remat must be one of"):
        PriorConfig(remat="sometimes")
    assert FULL_CONDITIONING.replace(remat=True).remat == "full"  # older configs' booleans


def test_a_rematted_unet_runs_inside_a_sampler_loop():
    """Samplers merge the model inside a loop body; remat must not write state back there."""
    cond = make_conditioning(FULL_CONDITIONING, jax.random.key(3), 1, 2, 8, 8)
    t = cond.pop("timesteps")
    x = jax.random.normal(jax.random.key(4), (1, 2, 8, 8, 3))
    state = nnx.state(SpatioTemporalUNet(FULL_CONDITIONING, rngs=nnx.Rngs(0)))

    def two_steps(remat):
        graphdef = nnx.graphdef(
            nnx.eval_shape(
                lambda: SpatioTemporalUNet(FULL_CONDITIONING.replace(remat=remat), rngs=nnx.Rngs(0))
            )
        )
        denoise = unet_denoise_fn(graphdef)
        loop = lambda s, x: jax.lax.fori_loop(0, 2, lambda _, x: denoise(s, x, t, cond), x)  # noqa: E731
        return jax.jit(loop)(state, x)

    np.testing.assert_allclose(two_steps("full"), two_steps("none"), atol=1e-5, rtol=1e-5)
