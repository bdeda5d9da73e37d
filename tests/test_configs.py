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


# What a config cannot know and the user must supply (local files): the problem names it.
NEEDS = {
    ("keyframes", "paper"): "clip_from",
    ("interpolation", "paper"): "clip_from",
    ("prior", "tiny"): "clip_from",
    ("prior", "paper"): "clip_from",
    ("clip", "paper"): "bpe_simple_vocab_16e6",
}


@pytest.mark.parametrize(
    "stage", ["clip", "prior", "keyframes", "interpolation", "sr_low", "sr_high"]
)
@pytest.mark.parametrize("variant", common.VARIANTS)
def test_every_stage_config_describes_a_runnable_stage(stage, variant):
    from mav_jax.stages import stage_from_config
    from mav_jax.stages.base import UNetStage

    built = stage_from_config(_load(stage).get_config(variant))
    assert built.name == stage
    need = NEEDS.get((stage, variant))
    assert [need in p for p in built.problems()] == ([True] if need else [])
    if isinstance(built, UNetStage):
        assert built.unet.extra_in_channels == {"interpolation": 4, "sr_low": 3, "sr_high": 3}.get(
            stage, 0
        )
        # keyframes start in the image phase; SR_h never has temporal layers
        assert built.unet.temporal == (stage in ("interpolation", "sr_low"))


def test_the_quickstart_recipe_is_one_consistent_cascade(tmp_path):
    """Every run of configs/quickstart.py builds, and the stages chain: each input resolution is
    the previous output, the keyframes are spaced as the interpolation expects, and each later
    stage reads the exports of the earlier ones."""
    from mav_jax.cascade import LoadedStage, _resolution_problems
    from mav_jax.configs import quickstart
    from mav_jax.stages import stage_from_config

    runs = dict(quickstart.stages(str(tmp_path / "data"), str(tmp_path), scale=1.0))
    assert list(runs) == list(quickstart.EXPORTS)
    built = {quickstart.EXPORTS[name]: stage_from_config(config) for name, config in runs.items()}
    loaded = {
        name: LoadedStage(stage, None, None, None)
        for name, stage in built.items()
        if name in ("keyframes", "interpolation", "sr_low", "sr_high")
    }
    assert _resolution_problems(loaded) == []
    keyframes, interp = built["keyframes"], built["interpolation"]
    assert keyframes.clips.frame_skips == (interp.keyframe_skip,)  # keyframes at 1/k the frame rate
    assert (
        keyframes.unet.embedding_dim
        == interp.unet.embedding_dim
        == built["clip"].clip.embed_dim
        == built["prior"].prior.embed_dim
    )
    assert (
        runs["prior"].clip_from
        == runs["keyframes_video"].clip_from
        == runs["interpolation"].clip_from
        == str(tmp_path / "checkpoints/clip")
    )
    assert runs["keyframes_video"].init_from == str(tmp_path / "checkpoints/keyframes_image")
    assert runs["interpolation"].init_from == str(tmp_path / "checkpoints/keyframes")
