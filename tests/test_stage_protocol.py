"""Every stage is a `Stage` (the one interface the trainer, plan, export and cascade call), sampling
options reach a stage only through `with_sampling`, `config.diffusion.sampler` picks the sampler,
and a config's own logical-axis rules shard its parameters."""

import dataclasses
import importlib
import inspect
import typing

import jax
import numpy as np
import pytest
from flax import nnx

from mav_jax.configs import common, keyframes
from mav_jax.diffusion import ddim_sample, ddpm_sample
from mav_jax.parallel import DEFAULT_RULES, make_mesh, rules_from_config
from mav_jax.parallel import logical_axes as ax
from mav_jax.stages import STAGES, Stage, stage_from_config
from mav_jax.stages.base import StageDefaults
from mav_jax.stages.sampling import SamplingOptions
from mav_jax.train.weights import abstract_params, build_train_state


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(Stage).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_satisfies_the_stage_protocol(name):
    stage = stage_from_config(importlib.import_module(f"mav_jax.configs.{name}").get_config("tiny"))
    assert isinstance(stage, Stage)
    for attribute in typing.get_type_hints(Stage):
        assert hasattr(stage, attribute), f"{name} lacks {attribute}"
    assert isinstance(stage.num_frames, int)
    for method, wanted in _protocol_methods().items():
        got = inspect.signature(getattr(type(stage), method))
        assert list(got.parameters) == list(wanted.parameters), f"{name}.{method}{got}"
    # Optional capabilities answer without probing: no conditioner is the identity.
    assert stage.makes_videos == (name in ("keyframes", "interpolation", "sr_low", "sr_high"))
    if not stage.makes_videos:
        with pytest.raises(NotImplementedError, match="does not make videos"):
            stage.sample(None, None, None, 1, 1, {})


def test_sampling_options_are_hashable_and_ignore_the_seed():
    assert SamplingOptions(seed=1, steps=2) == SamplingOptions(seed=7, steps=2)
    assert hash(SamplingOptions(seed=1)) == hash(SamplingOptions(seed=2))
    assert SamplingOptions(steps=2) != SamplingOptions(steps=3)
    assert SamplingOptions(seed=3, guidance=2.0).given() == {"guidance": 2.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        SamplingOptions().steps = 4


def test_with_sampling_applies_only_the_options_a_stage_reads_and_checks_them():
    kf = stage_from_config(keyframes.get_config("tiny"))
    assert kf.with_sampling(SamplingOptions()) is kf  # nothing set: the config's values
    changed = kf.with_sampling(SamplingOptions(keyframe_candidates=3, start_strength=0.5))
    assert changed.candidates == 3  # the keyframes read candidates, not start_strength
    assert dataclasses.replace(changed, candidates=kf.candidates) == kf
    with pytest.raises(ValueError, match="keyframes: config.diffusion.steady_motion_strength"):
        kf.with_sampling(SamplingOptions(steady_motion_strength=2.0))
    with pytest.raises(ValueError, match="config.diffusion.sampler must be one of"):
        kf.with_sampling(SamplingOptions(sampler="euler"))


def test_plain_sampling_turns_every_aid_of_the_quickstart_configs_off():
    """`--plain` (SamplingOptions.plain) samples the quickstart's stages as the paper does, whatever
    their configs set; the other options it was given are kept."""
    from mav_jax.configs import quickstart

    runs = dict(quickstart.stages("/data", "/work"))
    plain = SamplingOptions(seed=4, steps=7, guidance=2.0).plain()
    assert (plain.seed, plain.steps, plain.guidance) == (4, 7, 2.0)
    kf = stage_from_config(runs["keyframes_video"])
    assert (kf.frame_noise_correlation, kf.frame_noise_drift, kf.steady_motion_strength) == (
        0.8,
        2.0,
        0.2,
    )  # the aids the quickstart turns on
    kf = kf.with_sampling(plain)
    assert (kf.frame_noise_correlation, kf.frame_noise_drift) == (0.0, 0.0)
    assert (kf.steady_motion_strength, kf.candidates) == (0.0, 1)
    interpolation = stage_from_config(runs["interpolation"]).with_sampling(plain)
    assert (interpolation.start_strength, interpolation.frame_noise_correlation) == (1.0, 0.0)
    for name in ("sr_low", "sr_high"):
        sr = stage_from_config(runs[name])
        assert sr.low_res_consistency == 1.0
        sr = sr.with_sampling(plain)
        assert (sr.start_strength, sr.low_res_consistency) == (1.0, 0.0)


def _tiny_keyframes(sampler: str):
    config = keyframes.get_config("tiny")
    config.phase = "video"
    config.unet.update(base_channels=8, channel_mults=(1,), attention_levels=(), num_heads=1)
    config.data.update(resolution=8, num_frames=2)
    config.diffusion.update(sampler=sampler, num_timesteps=20)
    return stage_from_config(config)


def test_the_config_sampler_chooses_what_generate_runs():
    """diffusion.sampler=ddpm makes `generate` run ancestral DDPM: other samples than DDIM's
    (which is deterministic given x_T), and different again with another key, as DDIM is not."""
    ddim, ddpm = _tiny_keyframes("ddim"), _tiny_keyframes("ddpm")
    assert ddim.sample_fn() is ddim_sample and ddpm.sample_fn() is ddpm_sample
    assert not ddpm.problems()
    graphdef, params = nnx.split(ddim.build_model(nnx.Rngs(0)), nnx.Param)

    def generate(stage, key):
        return np.asarray(stage.generate(graphdef, params, key, 2, 8.0, 3))

    key = jax.random.key(0)
    by_ddim, by_ddpm = generate(ddim, key), generate(ddpm, key)
    assert by_ddim.shape == by_ddpm.shape == (2, 2, 8, 8, 3)
    assert not np.allclose(by_ddim, by_ddpm, atol=1e-3)
    np.testing.assert_allclose(generate(ddpm, key), by_ddpm, atol=1e-6)  # same key, same draw
    assert ddim.with_sampling(SamplingOptions(sampler="ddpm")).sample_fn() is ddpm_sample


def test_a_config_declared_rule_table_changes_the_parameter_shardings():
    config = keyframes.get_config("tiny")
    config.unet.update(base_channels=16, channel_mults=(1,), attention_levels=())
    stage = stage_from_config(config)
    mesh = make_mesh({"fsdp": 8})
    assert rules_from_config(config) is DEFAULT_RULES  # none declared: the default table

    def conv_in_specs(rules):
        _, params = abstract_params(stage, mesh, rules)
        flat = nnx.to_flat_state(params)
        return {
            path: var.get_value().sharding.spec
            for path, var in flat
            if var.get_metadata().get("out_sharding", (None,))[-2:-1] == (ax.CONV_IN,)
        }

    default = conv_in_specs(DEFAULT_RULES)
    assert default and any("fsdp" in spec for spec in default.values())
    config.sharding_rules = tuple((n, None if n == ax.CONV_IN else t) for n, t in DEFAULT_RULES)
    declared = rules_from_config(config)
    replicated = conv_in_specs(declared)
    assert replicated.keys() == default.keys()
    assert all("fsdp" not in spec for spec in replicated.values())
    # The trainer's own state builder reads the config's table.
    _, state, _ = build_train_state(config, stage, mesh)
    for path, var in nnx.to_flat_state(state.params):
        if path in replicated:
            assert "fsdp" not in var.get_value().sharding.spec


def test_a_bad_rule_table_is_a_clear_error():
    config = common.diffusion_config()  # any ConfigDict
    config.sharding_rules = (("heads", "tensor"),)
    with pytest.raises(ValueError, match="no rule for"):
        rules_from_config(config)
    config.sharding_rules = (("frames", "sequence"),)
    with pytest.raises(ValueError, match="mesh axes"):
        rules_from_config(config)
    config.sharding_rules = (("voxels", None),)
    with pytest.raises(ValueError, match="no layer uses"):
        rules_from_config(config)


def test_stage_defaults_are_the_neutral_capabilities():
    class Bare(StageDefaults):
        name = "bare"

    bare = Bare()
    batch = {"video": np.zeros(1)}
    assert bare.conditioner(None)(batch) is batch and bare.conditioning_shapes(4) == {}
    assert bare.factor == 1 and not bare.makes_videos
