"""The sharded train step: same loss and update on 8 devices as on one; temporal-only training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mav_jax.diffusion import cosine_schedule
from mav_jax.nn import SpatioTemporalUNet, UNetConfig, is_temporal_path
from mav_jax.parallel import make_mesh
from mav_jax.parallel.mesh_context import use_mesh
from mav_jax.stages.keyframes import KeyframeStage
from mav_jax.state_paths import flat_params
from mav_jax.train.optimizer import make_optimizer
from mav_jax.train.step import ema_decay_at, init_train_state, make_train_step

CFG = UNetConfig(
    base_channels=16,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_levels=(1,),
    num_heads=2,
    temporal=True,
    fps_conditioning=True,
    embedding_dim=8,
    dropout=0.1,
)
STAGE = KeyframeStage(cosine_schedule(100))


@pytest.fixture(scope="module")
def model():
    return SpatioTemporalUNet(CFG, rngs=nnx.Rngs(0))


def _batches(count: int, frames: int = 2):
    key = jax.random.key(1)
    out = []
    for i in range(count):
        k1, k2, k3 = jax.random.split(jax.random.fold_in(key, i), 3)
        out.append(
            {
                "video": jax.random.uniform(k1, (8, frames, 8, 8, 3), minval=-1, maxval=1),
                "fps": jax.random.uniform(k2, (8,), minval=2, maxval=24),
                "embedding": jax.random.normal(k3, (8, 8)),
            }
        )
    return out


def _train(
    model, mesh_shape, temporal_only=False, steps=2, optimizer=None, trainable=None, frames=2
):
    mesh = make_mesh(mesh_shape, jax.devices()[: int(np.prod(list(mesh_shape.values())))])
    params = nnx.state(model, nnx.Param)
    optimizer = optimizer or make_optimizer(1e-3, 10, temporal_only=temporal_only, params=params)
    graphdef, state = init_train_state(nnx.clone(model), optimizer, mesh, seed=0)
    batches = _batches(steps, frames)
    with use_mesh(mesh):  # activation shardings (frames over 'context'), as the trainer traces
        step = make_train_step(
            graphdef, STAGE, optimizer, mesh, state, batches[0], trainable=trainable
        )
        step = step.lower(state, batches[0]).compile()
    losses = []
    for batch in batches:
        state, metrics = step(state, batch)
        losses.append((float(metrics["loss"]), float(metrics["grad_norm"])))
    return state, losses, step  # step: the compiled program


def test_sharded_step_matches_one_device(model):
    # Plain SGD: Adam divides by sqrt(v), which turns the float noise of gradients that are exactly
    # zero in theory (a conv bias right before a GroupNorm) into +-lr updates, on any two devices.
    sgd = optax.sgd(0.05)
    sharded, sharded_losses, _ = _train(model, {"data": 2, "fsdp": 4}, optimizer=sgd)
    single, single_losses, _ = _train(model, {"data": 1}, optimizer=sgd)
    assert int(sharded.step) == 2 and np.all(np.isfinite(sharded_losses))
    ema = sharded.ema["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    assert not np.allclose(
        ema, sharded.params["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    )
    np.testing.assert_allclose(sharded_losses, single_losses, rtol=1e-5)
    kernel = sharded.params["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    assert kernel.addressable_shards[0].data.size < kernel.size  # FSDP-sharded
    for a, b in zip(jax.tree.leaves(sharded.params), jax.tree.leaves(single.params), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-4)
    original = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert any(
        not np.allclose(a, b) for a, b in zip(jax.tree.leaves(single.params), original, strict=True)
    )


@pytest.fixture(scope="module")
def moved_model(model):
    """The model with every weight moved off its initialisation: temporal layers that are not
    the identity, so the temporal conv and attention change the loss."""
    moved = nnx.clone(model)
    params = nnx.state(moved, nnx.Param)
    noise = jax.tree.map(lambda p: 0.05 * jax.random.normal(jax.random.key(7), p.shape), params)
    nnx.update(moved, jax.tree.map(jnp.add, params, noise))
    return moved


@pytest.fixture(scope="module")
def one_device_four_frames(moved_model):
    return _train(moved_model, {"data": 1}, optimizer=optax.sgd(0.05), steps=1, frames=4)


@pytest.mark.parametrize("mesh_shape", [{"context": 4}, {"fsdp": 2, "context": 4}])
def test_frames_split_over_context_give_the_one_device_step(
    moved_model, one_device_four_frames, mesh_shape
):
    split, split_losses, compiled = _train(
        moved_model, mesh_shape, optimizer=optax.sgd(0.05), steps=1, frames=4
    )
    hlo = compiled.as_text()
    # The temporal conv's halo exchange and the temporal attention's resharding are really there.
    assert "collective-permute" in hlo and "all-to-all" in hlo
    single, single_losses, _ = one_device_four_frames
    np.testing.assert_allclose(split_losses, single_losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(split.params), jax.tree.leaves(single.params), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-4)


def test_a_context_axis_that_does_not_divide_the_frames_is_refused(tmp_path):
    from trainer_helpers import tiny_config

    from mav_jax.stages import stage_from_config
    from mav_jax.train.abstract_state import lower_train_step

    config = tiny_config(str(tmp_path), phase="video")  # 3 frames a clip
    stage = stage_from_config(config)
    with pytest.raises(ValueError, match=r"context axis \(2\) must divide the stage's 3 frames"):
        lower_train_step(config, stage, make_mesh({"context": 2}, jax.devices()[:2]), 1)


def test_temporal_only_training_keeps_spatial_weights_bit_identical(model):
    state, _, skipping = _train(model, {"data": 1}, temporal_only=True, trainable=is_temporal_path)
    before = flat_params(model)
    after = flat_params(state.params)
    changed = {p for p in before if not np.array_equal(before[p][...], after[p][...])}
    assert changed and all(
        any(n.startswith("temporal") or n == "fps_embedding" for n in p) for p in changed
    )
    assert any("temporal_attention" in p for p in changed)
    # The same updates as differentiating everything and zeroing the spatial gradients after,
    # without computing those gradients: the step does less work.
    full, _, full_step = _train(model, {"data": 1}, temporal_only=True)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(full.params), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    flops = lambda compiled: compiled.cost_analysis()["flops"]  # noqa: E731
    assert flops(skipping) < 0.9 * flops(full_step)


class _RegressionStage:
    """A loss with no randomness (fixed timestep, no dropout, no noise), so accumulating the
    gradients of micro-batches must give exactly the whole batch's update. Only what the train
    step uses of the `Stage` protocol."""

    logged_metrics = ()

    @staticmethod
    def loss(model, batch, key, timesteps=None):
        del key, timesteps
        t = jnp.full((batch["video"].shape[0],), 10)
        out = model(batch["video"], t, fps=batch["fps"], embedding=batch["embedding"])
        return jnp.mean(jnp.square(out - batch["video"])), None


def test_gradient_accumulation_gives_the_whole_batch_update(model):
    mesh = make_mesh({"data": 2, "fsdp": 2}, jax.devices()[:4])
    sgd = optax.sgd(0.05)
    batch = _batches(1)[0]
    results = []
    for accumulate in (1, 2):
        graphdef, state = init_train_state(nnx.clone(model), sgd, mesh, seed=0)
        step = make_train_step(
            graphdef, _RegressionStage(), sgd, mesh, state, batch, grad_accum_steps=accumulate
        )
        state, metrics = step(state, batch)
        results.append((state, float(metrics["loss"]), float(metrics["grad_norm"])))
    (whole, loss1, norm1), (accumulated, loss2, norm2) = results
    np.testing.assert_allclose([loss2, norm2], [loss1, norm1], rtol=1e-5)
    for a, b in zip(
        jax.tree.leaves(accumulated.params), jax.tree.leaves(whole.params), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)


def test_ema_decay_warms_up_to_the_configured_decay():
    # A short run's EMA must follow its recent weights, not keep its initialisation: with a fixed
    # 0.99 a 150-step run's EMA would still be 22% the initial weights.
    decays = [float(ema_decay_at(step, 0.99)) for step in (0, 1, 90, 150, 990, 10_000)]
    np.testing.assert_allclose(decays[:4], [0.1, 2 / 11, 0.91, 151 / 160], rtol=1e-6)
    assert decays[4] == decays[5] == np.float32(0.99)
    initial_weight = np.prod([float(ema_decay_at(step, 0.99)) for step in range(150)])
    assert initial_weight < 1e-9
