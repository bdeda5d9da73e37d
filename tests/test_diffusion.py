"""Diffusion core: schedules, parameterisations, samplers and classifier-free guidance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_conditioning
from flax import nnx

from mav_jax.data.stage_inputs import downsample
from mav_jax.diffusion import (
    condition_keep_mask,
    cosine_schedule,
    ddim_sample,
    ddpm_sample,
    diffusion_loss,
    guided_output,
    linear_schedule,
    make_schedule,
    predict_x0_and_eps,
    prediction_target,
    q_sample,
    sampling_timesteps,
)
from mav_jax.diffusion.low_res_consistency import block_means, hold_to_low_res
from mav_jax.nn import unet_denoise_fn

SCHEDULES = {"cosine": cosine_schedule(200), "linear": linear_schedule(200)}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_go_from_clean_to_pure_noise(name):
    abar = np.asarray(SCHEDULES[name].alphas_cumprod)
    assert abar.shape == (200,)
    assert np.all(np.diff(abar) < 0)
    assert abar[0] > 0.99 and abar[-1] < 0.01 and abar[-1] > 0


def test_cosine_schedule_matches_its_closed_form():
    abar = np.asarray(cosine_schedule(1000).alphas_cumprod, np.float64)
    f = lambda t: np.cos((t / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    t = np.array([0, 100, 500, 900])
    np.testing.assert_allclose(abar[t], f(t + 1) / f(0), rtol=1e-5)


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="cosine"):
        make_schedule("sigmoidal")


def test_forward_process_is_alpha_x0_plus_sigma_eps():
    schedule = SCHEDULES["cosine"]
    x0 = jax.random.normal(jax.random.key(0), (2, 3, 4, 4, 3))
    noise = jax.random.normal(jax.random.key(1), x0.shape)
    t = jnp.array([5, 150])
    abar = schedule.alphas_cumprod[t]
    expected = (
        jnp.sqrt(abar)[:, None, None, None, None] * x0
        + jnp.sqrt(1 - abar)[:, None, None, None, None] * noise
    )
    np.testing.assert_allclose(q_sample(schedule, x0, t, noise), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_prediction_targets_invert_to_x0_and_eps(prediction):
    x0 = jax.random.normal(jax.random.key(0), (4, 5))
    eps = jax.random.normal(jax.random.key(1), (4, 5))
    alpha, sigma = jnp.float32(0.6), jnp.float32(0.8)
    x_t = alpha * x0 + sigma * eps
    target = prediction_target(prediction, x0, eps, alpha, sigma)
    x0_hat, eps_hat = predict_x0_and_eps(prediction, target, x_t, alpha, sigma)
    np.testing.assert_allclose(x0_hat, x0, atol=1e-5)
    np.testing.assert_allclose(eps_hat, eps, atol=1e-5)


def test_v_and_eps_parameterisations_imply_the_same_x0():
    """A network that is off by the same eps error in either parameterisation implies one x0."""
    key = jax.random.key(2)
    x0, eps, err = jax.random.normal(key, (3, 4, 6))
    for alpha in (0.99, 0.5, 0.05):
        alpha = jnp.float32(alpha)
        sigma = jnp.sqrt(1 - alpha**2)
        x_t = alpha * x0 + sigma * eps
        eps_pred = eps + err
        # The v implied by (x_t, eps_pred): x0 from eps, then v = alpha eps - sigma x0.
        x0_from_eps, _ = predict_x0_and_eps("eps", eps_pred, x_t, alpha, sigma)
        v_pred = prediction_target("v", x0_from_eps, eps_pred, alpha, sigma)
        x0_from_v, eps_from_v = predict_x0_and_eps("v", v_pred, x_t, alpha, sigma)
        np.testing.assert_allclose(x0_from_v, x0_from_eps, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(eps_from_v, eps_pred, atol=1e-4, rtol=1e-4)


def _perfect_denoiser(x0, prediction, schedule):
    """denoise_fn that knows the clean sample: returns the exact target for any x_t."""

    def denoise(params, x_t, t, cond):
        alpha, sigma = schedule.alpha_sigma(t)
        alpha, sigma = alpha[:, None, None], sigma[:, None, None]
        eps = (x_t - alpha * x0) / sigma
        return prediction_target(prediction, x0, eps, alpha, sigma)

    return denoise


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_samplers_with_a_perfect_denoiser_return_x0(schedule_name, prediction):
    schedule = SCHEDULES[schedule_name]
    x0 = jnp.tanh(jax.random.normal(jax.random.key(0), (2, 6, 5)))  # inside [-1, 1]
    x_T = jax.random.normal(jax.random.key(1), x0.shape)
    denoise = _perfect_denoiser(x0, prediction, schedule)
    common = dict(prediction=prediction, clip_x0=False)
    outputs = {
        "ddim": ddim_sample(
            denoise, None, x_T, jax.random.key(2), schedule, num_steps=10, **common
        ),
        "ddim_eta1": ddim_sample(
            denoise, None, x_T, jax.random.key(2), schedule, num_steps=10, eta=1.0, **common
        ),
        "ddpm": ddpm_sample(denoise, None, x_T, jax.random.key(3), schedule, **common),
        "ddpm_strided": ddpm_sample(
            denoise, None, x_T, jax.random.key(3), schedule, num_steps=25, **common
        ),
    }
    for name, out in outputs.items():
        np.testing.assert_allclose(out, x0, atol=2e-3, err_msg=name)


def _gaussian_posterior_denoiser(mean: float, std: float, prediction, schedule):
    """The Bayes-optimal denoiser for data x0 ~ N(mean, std^2) per element:
    E[x0 | x_t] = mean + alpha std^2 / (alpha^2 std^2 + sigma^2) (x_t - alpha mean)."""

    def denoise(params, x_t, t, cond):
        alpha, sigma = (broadcast(v) for v in schedule.alpha_sigma(t))
        x0 = mean + alpha * std**2 / (alpha**2 * std**2 + sigma**2) * (x_t - alpha * mean)
        eps = (x_t - alpha * x0) / sigma
        return prediction_target(prediction, x0, eps, alpha, sigma)

    broadcast = lambda v: v[:, None]  # noqa: E731
    return denoise


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_samplers_draw_from_the_data_distribution_given_the_optimal_denoiser(prediction):
    """With the exact denoiser of a Gaussian, samples from noise must have the data's mean and
    spread: a sampler that drifts (wrong coefficients, off-by-one steps) fails here even though
    it returns x0 for a denoiser that already knows x0."""
    schedule = SCHEDULES["cosine"]
    mean, std = -0.6, 0.3
    denoise = _gaussian_posterior_denoiser(mean, std, prediction, schedule)
    x_T = jax.random.normal(jax.random.key(0), (4096, 4))
    common = dict(prediction=prediction, clip_x0=False)
    samples = {
        "ddim": ddim_sample(
            denoise, None, x_T, jax.random.key(1), schedule, num_steps=200, **common
        ),
        "ddpm": ddpm_sample(denoise, None, x_T, jax.random.key(2), schedule, **common),
    }
    # Every step of the 200-step schedule: few-step samplers shrink the spread (about 10% at 20
    # DDIM steps), a discretisation error rather than a drift.
    for name, x in samples.items():
        np.testing.assert_allclose(float(x.mean()), mean, atol=0.01, err_msg=name)
        np.testing.assert_allclose(float(x.std()), std, atol=0.015, err_msg=name)


def _toy_denoiser(params, x_t, t, cond):
    """Deterministic but non-trivial: depends on x_t, t and the embedding."""
    scale = 1.0 + 0.001 * t.astype(jnp.float32)[:, None, None]
    return jnp.tanh(x_t * scale + cond["embedding"][:, None, :])


def test_ddim_with_eta_zero_is_deterministic_and_eta_one_is_not():
    schedule = SCHEDULES["cosine"]
    x_T = jax.random.normal(jax.random.key(1), (2, 3, 4))
    cond = {"embedding": jax.random.normal(jax.random.key(2), (2, 4))}
    run = lambda key, eta: ddim_sample(
        _toy_denoiser, None, x_T, key, schedule, cond, num_steps=8, eta=eta
    )  # noqa: E731
    np.testing.assert_array_equal(run(jax.random.key(3), 0.0), run(jax.random.key(4), 0.0))
    assert not np.allclose(run(jax.random.key(3), 1.0), run(jax.random.key(4), 1.0))
    assert np.all(np.isfinite(run(jax.random.key(3), 1.0)))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samplers_show_the_network_the_given_frames_forward_noised_at_every_step(sampler):
    """↑F's hold: at every call the given frames of x_t are sqrt(abar_t) x0 + sqrt(1-abar_t) x_T,
    as in training; the other frames follow the sampler's own trajectory."""
    schedule = SCHEDULES["cosine"]
    x_T = jax.random.normal(jax.random.key(1), (2, 3, 4))  # (B, F, D)
    x0 = jax.random.uniform(jax.random.key(2), (2, 3, 4), minval=-1, maxval=1)
    mask = jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # (B, F)
    seen = []

    def recording_denoiser(params, x_t, t, cond):
        jax.debug.callback(lambda x, t: seen.append((np.asarray(x), int(t[0]))), x_t, t)
        return jnp.tanh(x_t)

    sample = ddim_sample if sampler == "ddim" else ddpm_sample
    out = sample(
        recording_denoiser, None, x_T, jax.random.key(3), schedule, num_steps=5, known=(x0, mask)
    )
    out.block_until_ready()
    assert len(seen) == 5
    given = np.asarray(mask, bool)
    abar = np.asarray(schedule.alphas_cumprod)
    for x_t, t in seen:
        expected = np.sqrt(abar[t]) * np.asarray(x0) + np.sqrt(1 - abar[t]) * np.asarray(x_T)
        np.testing.assert_allclose(x_t[given], expected[given], rtol=1e-5, atol=1e-5)
    later_x, later_t = seen[-1]
    assert later_t < seen[0][1]
    assert not np.allclose(later_x[~given], expected[~given], atol=1e-2)  # free frames drift
    unheld = sample(recording_denoiser, None, x_T, jax.random.key(3), schedule, num_steps=5)
    assert not np.allclose(np.asarray(unheld)[given], np.asarray(out)[given], atol=1e-3)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samplers_started_part_way_run_the_last_steps_from_the_noised_guess(sampler):
    """SDEdit: strength s runs only the last round(s * steps) steps, from the guess forward-noised
    with x_T to the first of them; strength 1 starts from x_T whatever the guess."""
    schedule = SCHEDULES["cosine"]
    sample = ddim_sample if sampler == "ddim" else ddpm_sample
    x_T = jax.random.normal(jax.random.key(1), (2, 3, 4))
    guess = jax.random.uniform(jax.random.key(2), (2, 3, 4), minval=-1, maxval=1)
    seen = []

    def recording_denoiser(params, x_t, t, cond):
        jax.debug.callback(lambda x, t: seen.append((np.asarray(x), int(t[0]))), x_t, t)
        return jnp.tanh(x_t)

    sample(
        recording_denoiser,
        None,
        x_T,
        jax.random.key(3),
        schedule,
        num_steps=10,
        init=guess,
        strength=0.4,
    ).block_until_ready()
    ts = sampling_timesteps(schedule.num_timesteps, 10)[0]
    assert [t for _, t in seen] == list(ts[6:])
    abar = float(schedule.alphas_cumprod[ts[6]])
    np.testing.assert_allclose(
        seen[0][0], np.sqrt(abar) * guess + np.sqrt(1 - abar) * x_T, rtol=1e-5, atol=1e-5
    )
    run = lambda **kw: sample(
        _toy_denoiser,
        None,
        x_T,
        jax.random.key(3),
        SCHEDULES["cosine"],  # noqa: E731
        {"embedding": jnp.ones((2, 4))},
        num_steps=10,
        **kw,
    )
    np.testing.assert_array_equal(run(init=guess, strength=1.0), run())
    assert not np.allclose(run(init=guess, strength=0.4), run(), atol=1e-3)
    # A network that predicts the guess itself gives back exactly the guess.
    oracle = lambda params, x_t, t, cond: jnp.broadcast_to(guess, x_t.shape)  # noqa: E731
    out = sample(
        oracle,
        None,
        x_T,
        jax.random.key(3),
        schedule,
        num_steps=10,
        prediction="x0",
        init=guess,
        strength=0.3,
    )
    np.testing.assert_allclose(out, guess, atol=1e-5)
    with pytest.raises(ValueError, match="strength must be in"):
        sample(
            oracle, None, x_T, jax.random.key(3), schedule, num_steps=10, init=guess, strength=0.0
        )


def test_sampling_timesteps_cover_the_schedule_in_descending_order():
    ts, nxt = sampling_timesteps(1000, 4)
    np.testing.assert_array_equal(ts, [999, 666, 333, 0])
    np.testing.assert_array_equal(nxt, [666, 333, 0, -1])
    with pytest.raises(ValueError, match="num_steps"):
        sampling_timesteps(10, 11)


def test_diffusion_loss_is_zero_for_a_perfect_model_and_honours_weights():
    schedule = SCHEDULES["linear"]
    x0 = jax.random.normal(jax.random.key(0), (3, 2, 4, 4, 3))
    key = jax.random.key(5)

    def perfect(x_t, t):  # recovers eps from the known x0
        alpha, sigma = (v[:, None, None, None, None] for v in schedule.alpha_sigma(t))
        return (x_t - alpha * x0) / sigma

    loss, aux = diffusion_loss(perfect, x0, key, schedule, "eps")
    assert float(loss) < 1e-8 and aux["per_example_loss"].shape == (3,)
    zero_model = lambda x_t, t: jnp.zeros_like(x_t)  # noqa: E731
    full, _ = diffusion_loss(zero_model, x0, key, schedule, "eps")
    assert 0.5 < float(full) < 2.0  # E[eps^2] = 1
    only_first_frame = jnp.zeros((3, 2, 1, 1, 1)).at[:, 0].set(1.0)
    _, weighted = diffusion_loss(zero_model, x0, key, schedule, "eps", weights=only_first_frame)
    t_key, noise_key = jax.random.split(key)
    noise = jax.random.normal(noise_key, x0.shape)
    np.testing.assert_allclose(
        weighted["per_example_loss"], jnp.mean(noise[:, 0] ** 2, axis=(1, 2, 3)), rtol=1e-5
    )
    given, _ = diffusion_loss(zero_model, x0, key, schedule, "eps", noise=jnp.full(x0.shape, 2.0))
    assert float(given) == pytest.approx(4.0)  # the given noise is the eps target
    with pytest.raises(ValueError, match="must match"):
        diffusion_loss(zero_model, x0, key, schedule, "eps", noise=jnp.zeros((3, 2)))


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_min_snr_weighting_is_the_clipped_snr_times_the_x0_error(prediction):
    """Whatever the network predicts, the Min-SNR loss is mean_b min(SNR_b, gamma) * x0 MSE_b."""
    schedule, gamma = SCHEDULES["cosine"], 5.0
    x0 = jnp.tanh(jax.random.normal(jax.random.key(0), (16, 3, 4)))
    seen = {}

    def model_fn(x_t, t):  # any imperfect model will do
        seen["x_t"] = x_t
        return 0.5 * jnp.sin(3.0 * x_t)

    loss, aux = diffusion_loss(
        model_fn, x0, jax.random.key(1), schedule, prediction, min_snr_gamma=gamma
    )
    t = aux["timesteps"]
    alpha, sigma = (v[:, None, None] for v in schedule.alpha_sigma(t))
    x0_hat, _ = predict_x0_and_eps(prediction, aux["output"], seen["x_t"], alpha, sigma)
    abar = schedule.alphas_cumprod[t]
    expected = jnp.mean(jnp.minimum(abar / (1 - abar), gamma) * ((x0_hat - x0) ** 2).mean((1, 2)))
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    unweighted, _ = diffusion_loss(model_fn, x0, jax.random.key(1), schedule, prediction)
    np.testing.assert_allclose(unweighted, aux["per_example_loss"].mean(), rtol=1e-6)


def test_condition_dropout_rate():
    keep = condition_keep_mask(jax.random.key(0), 10_000, 0.1)
    assert keep.dtype == jnp.bool_ and 0.88 < float(keep.mean()) < 0.92
    with pytest.raises(ValueError, match="drop rate"):
        condition_keep_mask(jax.random.key(0), 4, 1.0)


@pytest.fixture(scope="module")
def unet_denoise(video_unet):
    graphdef, state = nnx.split(video_unet)
    return unet_denoise_fn(graphdef), state


def test_guidance_scale_one_is_the_conditional_prediction_and_zero_the_unconditional(
    video_cfg, unet_denoise
):
    denoise, state = unet_denoise
    b, f, h, w = 2, 2, 8, 8
    cond = make_conditioning(video_cfg, jax.random.key(1), b, f, h, w)
    t = cond.pop("timesteps").astype(jnp.int32)
    x = jax.random.normal(jax.random.key(2), (b, f, h, w, 3))
    guided = jax.jit(guided_output, static_argnums=0)
    conditional = jax.jit(denoise)(state, x, t, cond)
    unconditional = jax.jit(denoise)(state, x, t, dict(cond, embedding_mask=jnp.zeros(b, bool)))
    np.testing.assert_allclose(guided(denoise, state, x, t, cond, 1.0), conditional, atol=1e-5)
    np.testing.assert_allclose(guided(denoise, state, x, t, cond, 0.0), unconditional, atol=1e-5)
    three = guided(denoise, state, x, t, cond, 3.0)
    np.testing.assert_allclose(
        three, unconditional + 3.0 * (conditional - unconditional), atol=1e-4
    )


def test_guided_ddim_runs_the_real_unet_in_one_compiled_loop(video_cfg, unet_denoise):
    denoise, state = unet_denoise
    schedule = SCHEDULES["cosine"]
    cond = make_conditioning(video_cfg, jax.random.key(3), 1, 2, 8, 8)
    cond.pop("timesteps")
    x_T = jax.random.normal(jax.random.key(4), (1, 2, 8, 8, 3))
    video = ddim_sample(
        denoise, state, x_T, jax.random.key(5), schedule, cond, num_steps=3, guidance_scale=4.0
    )
    assert video.shape == x_T.shape and video.dtype == jnp.float32
    assert np.all(np.isfinite(video)) and float(jnp.abs(video).max()) <= 1.0 + 1e-5


def test_holding_to_the_low_res_input_sets_block_means_and_keeps_the_detail_inside_blocks():
    """DDNM's range-null-space split: at weight 1 each 2x2 block averages to its input pixel;
    what varies inside a block (the null space of box downsampling) is left as drawn."""
    x0 = jax.random.uniform(
        jax.random.key(0), (2, 3, 8, 6, 3), minval=-1, maxval=1
    )  # (B, F, H, W, C)
    low = jax.random.uniform(jax.random.key(1), (2, 3, 4, 3, 3), minval=-1, maxval=1)
    # The hold's downsampling is the one that makes the SR stages' inputs from their targets.
    np.testing.assert_allclose(block_means(x0, 2)[1], downsample(np.asarray(x0[1]), 2), atol=1e-6)
    held = np.asarray(hold_to_low_res(x0, (low, 1.0)))
    np.testing.assert_allclose(block_means(jnp.asarray(held), 2), low, atol=1e-6)
    detail = lambda x: np.asarray(x) - np.repeat(np.repeat(block_means(x, 2), 2, 2), 2, 3)  # noqa: E731
    np.testing.assert_allclose(detail(jnp.asarray(held)), detail(x0), atol=1e-6)
    half = block_means(hold_to_low_res(x0, (low, 0.5)), 2)
    np.testing.assert_allclose(half, (block_means(x0, 2) + low) / 2, atol=1e-6)
    np.testing.assert_array_equal(hold_to_low_res(x0, (low, 0.0)), x0)
    with pytest.raises(ValueError, match="does not downsample"):
        hold_to_low_res(x0, (low[:, :, :3], 1.0))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samplers_held_to_a_low_res_input_end_at_a_sample_that_downsamples_to_it(sampler):
    sample = ddim_sample if sampler == "ddim" else ddpm_sample
    x_T = jax.random.normal(jax.random.key(1), (1, 2, 8, 8, 3))
    low = jax.random.uniform(jax.random.key(2), (1, 2, 4, 4, 3), minval=-0.5, maxval=0.5)
    # Off by 0.3 everywhere, with detail small enough that no held pixel is clipped.
    drifting = lambda params, x_t, t, cond: 0.2 * jnp.tanh(x_t) + 0.3  # noqa: E731
    run = lambda **kw: sample(
        drifting,
        None,
        x_T,
        jax.random.key(3),
        SCHEDULES["cosine"],  # noqa: E731
        num_steps=6,
        prediction="x0",
        **kw,
    )
    free, held = run(), run(low_res=(low, 1.0))
    assert np.abs(block_means(free, 2) - low).max() > 0.1
    np.testing.assert_allclose(block_means(held, 2), low, atol=1e-5)
    assert np.abs(np.asarray(held) - np.asarray(free)).max() > 0.1
