"""configs/common.py builds valid U-Net and diffusion settings for every size variant."""

import importlib.util
import pathlib

import pytest
from flax import nnx

from mav_jax.diffusion import PREDICTIONS, make_schedule
from mav_jax.nn import SpatioTemporalUNet, UNetConfig

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load("common")


@pytest.mark.parametrize("variant", common.VARIANTS)
def test_unet_configs_are_valid_and_build_abstractly(variant):
    cfg = UNetConfig.from_dict(common.unet_config(variant))
    model = nnx.eval_shape(lambda: SpatioTemporalUNet(cfg, rngs=nnx.Rngs(0)))  # no memory used
    params = sum(v.size for v in __import__("jax").tree.leaves(nnx.state(model, nnx.Param)))
    assert params > (100_000 if variant == "tiny" else 100_000_000)


def test_diffusion_config_names_real_choices():
    cfg = common.diffusion_config()
    assert make_schedule(cfg.schedule, cfg.num_timesteps).num_timesteps == cfg.num_timesteps
    assert cfg.prediction in PREDICTIONS


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="tiny"):
        common.unet_config("huge")


@pytest.mark.parametrize("stage", ["keyframes", "interpolation", "sr_low", "sr_high"])
@pytest.mark.parametrize("variant", common.VARIANTS)
def test_every_stage_config_describes_a_runnable_stage(stage, variant):
    from mav_jax.stages import stage_from_config

    built = stage_from_config(_load(stage).get_config(variant))
    assert built.name == stage and built.problems() == []
    assert built.unet.extra_in_channels == {"interpolation": 4, "sr_low": 3, "sr_high": 3}.get(stage, 0)
    # keyframes start in the image phase; SR_h never has temporal layers
    assert built.unet.temporal == (stage in ("interpolation", "sr_low"))
