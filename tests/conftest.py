"""Test setup: 8 fake CPU devices (so sharding tests are real) and shared tiny models.

XLA compile time dominates on 2 cores, so models and jitted functions are built once per session
and shared by the tests that use them.
"""

import os
import pathlib
import shutil
import tempfile

# CPU only, set before JAX starts: with the TPU compiler installed (the plan extra) JAX would
# otherwise probe for a TPU and hold libtpu's lockfile, which the plan tool's own process needs.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# LLVM at -O0 for XLA:CPU's generated kernels, for the tests only: they run a few tiny steps, so
# compile time is what they wait on (the tiny video train step compiles in 11 s, not 20). Bigger
# steps run slower at -O0 (the quickstart's D^t step 2x), hence not for training. The whole suite
# on a 2-core host: 26.8 -> 18.7 min (2026-12-07). Subprocesses inherit it; it is part of the XLA
# cache's key.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

# Compile options that give one program -O2 back (a runtime-bound one, like FVD's I3D).
XLA_OPTIMISED = {"xla_backend_optimization_level": 2}

import jax  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_threefry_partitionable", True)

# XLA's persistent compilation cache, new for each test session: a program compiled once (the tiny
# train step that several tests and their subprocesses build, say) is read back, not compiled
# again. Only compiles of a second or more are kept. pytest-xdist workers inherit the directory
# through the environment from the controlling process (which made it, and removes it);
# subprocesses get it through trainer_helpers.subprocess_env.
if "MAV_JAX_TEST_XLA_CACHE" not in os.environ:
    os.environ["MAV_JAX_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="mav_jax_xla_cache_")
XLA_CACHE = os.environ["MAV_JAX_TEST_XLA_CACHE"]
XLA_CACHE_MIN_SECONDS = 1.0
jax.config.update("jax_compilation_cache_dir", XLA_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", XLA_CACHE_MIN_SECONDS)

import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402

from mav_jax.nn import SpatioTemporalUNet, UNetConfig, transplant_spatial_params  # noqa: E402

# Every conditioning input in use: timestep, fps, noise-augmentation level, a global embedding
# (added to the time embedding and projected to cross-attention tokens), 4 extra input channels.
FULL_CONDITIONING = UNetConfig(
    base_channels=16,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_levels=(1,),
    num_heads=2,
    temporal=True,
    fps_conditioning=True,
    noise_aug_conditioning=True,
    embedding_dim=8,
    num_context_tokens=2,
    extra_in_channels=4,
)


def keyframe_loss_input(video, **stage_fields):
    """What the keyframe stage's loss shows the U-Net for `video` (B, F, H, W, 3): x_t, the
    frames noised as the stage's frame-noise fields say (a stand-in U-Net records it)."""
    from mav_jax.diffusion import make_schedule
    from mav_jax.stages.keyframes import KeyframeStage

    seen = []

    class NoiseRecorder:  # stands in for the U-Net: records what it is shown
        config = UNetConfig(base_channels=8, channel_mults=(1,), attention_levels=())

        def __call__(self, x_t, t, **_):
            seen.append(x_t)
            return jnp.zeros_like(x_t)

    stage = KeyframeStage(schedule=make_schedule("linear", 100), **stage_fields)
    stage.loss(NoiseRecorder(), {"video": jnp.asarray(video, jnp.float32)}, jax.random.key(0))
    return seen[-1]


def pytest_configure(config):
    assert len(jax.devices()) == 8, "tests expect 8 fake CPU devices (jax_num_cpu_devices)"


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):  # the controlling process, not an xdist worker
        shutil.rmtree(XLA_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def video_cfg() -> UNetConfig:
    return FULL_CONDITIONING


@pytest.fixture(scope="session")
def image_cfg(video_cfg) -> UNetConfig:
    """The image U-Net the video one is made from: no temporal layers, no fps conditioning."""
    return video_cfg.replace(temporal=False, fps_conditioning=False)


@pytest.fixture(scope="session")
def image_unet(image_cfg) -> SpatioTemporalUNet:
    return SpatioTemporalUNet(image_cfg, rngs=nnx.Rngs(1))


@pytest.fixture(scope="session")
def video_unet(video_cfg, image_unet) -> SpatioTemporalUNet:
    """A freshly initialised video U-Net carrying the image U-Net's spatial weights."""
    model = SpatioTemporalUNet(video_cfg, rngs=nnx.Rngs(2))
    transplant_spatial_params(nnx.state(image_unet, nnx.Param), model)
    return model


def make_conditioning(cfg: UNetConfig, key, batch: int, frames: int, height: int, width: int):
    """Random inputs for every conditioning the config asks for."""
    k = jax.random.split(key, 6)
    cond = {}
    if cfg.timestep_conditioning:
        cond["timesteps"] = jax.random.randint(k[0], (batch,), 0, 1000).astype(jnp.float32)
    if cfg.fps_conditioning:
        cond["fps"] = jax.random.uniform(k[1], (batch,), minval=2.0, maxval=30.0)
    if cfg.noise_aug_conditioning:
        cond["noise_aug_level"] = jax.random.uniform(k[2], (batch,), maxval=300.0)
    if cfg.embedding_dim:
        cond["embedding"] = jax.random.normal(k[3], (batch, cfg.embedding_dim))
    if cfg.extra_in_channels:
        shape = (batch, frames, height, width, cfg.extra_in_channels)
        cond["extra"] = jax.random.normal(k[4], shape)
    return cond


def encode_video(path, frames, fps: int = 8) -> None:
    """Write (T, H, W, 3) uint8 frames as an MPEG-4 file with FFmpeg (PyAV)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="session")
def digits_data_dir(tmp_path_factory) -> str:
    """A small Moving Digits build ('moving_digits/unit') the training tests read."""
    from mav_jax.data.moving_digits import MovingDigits, MovingDigitsConfig

    data_dir = tmp_path_factory.mktemp("tfds")
    config = MovingDigitsConfig(name="unit", num_images=64, num_videos=16, num_eval=4)
    builder = MovingDigits(config=config, data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare()
    return str(data_dir)


# A CLIP small enough to compile in seconds; the prior and the sampler tests build on its export.
UNIT_CLIP = dict(
    embed_dim=32,
    image_size=16,
    patch_size=8,
    vision_width=32,
    vision_layers=1,
    vision_heads=2,
    text_width=32,
    text_layers=1,
    text_heads=2,
    context_length=24,
)


@pytest.fixture(scope="session")
def clip_export(digits_data_dir, tmp_path_factory) -> str:
    """The clip stage trained 4 steps on the unit digits set and exported."""
    from mav_jax.configs import clip
    from mav_jax.train.trainer import train_and_evaluate
    from mav_jax.train.weights import export_inference

    config = clip.get_config("tiny")
    config.clip.update(UNIT_CLIP)
    config.data.update(dataset="moving_digits/unit", data_dir=digits_data_dir, resolution=16)
    config.train.update(num_steps=4, global_batch_size=16, checkpoint_every=4, log_every=2)
    config.mesh.update(data=2, fsdp=4)
    workdir = tmp_path_factory.mktemp("clip_run")
    train_and_evaluate(config, str(workdir))
    output = tmp_path_factory.mktemp("clip_export")
    export_inference(str(workdir), str(output))
    return str(output)
