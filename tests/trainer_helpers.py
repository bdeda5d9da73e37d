"""A tiny keyframe-stage config shared by the trainer tests, as a ConfigDict and as CLI flags."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, XLA_CACHE, XLA_CACHE_MIN_SECONDS

from mav_jax.configs import keyframes

# Flattened overrides: applied to the ConfigDict in-process, passed as --config.* to subprocesses.
TINY = {
    "data.dataset": "moving_digits/unit",
    "data.resolution": 16,
    "data.num_frames": 3,
    "unet.base_channels": 16,
    "unet.channel_mults": (1, 2),
    "unet.num_heads": 2,
    "train.global_batch_size": 8,
    "train.num_steps": 4,
    "train.warmup_steps": 2,
    "train.log_every": 2,
    "train.checkpoint_every": 2,
    "train.num_samples": 2,
    "train.sample_steps": 2,
    "mesh.data": 2,
    "mesh.fsdp": 4,
}


def tiny_config(data_dir: str, **overrides):
    config = keyframes.get_config("tiny")
    values = {**TINY, "data.data_dir": data_dir, **overrides}
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = config
        for name in parents:
            node = node[name]
        node[leaf] = value
    return config


def cli_flags(data_dir: str, **overrides) -> list[str]:
    values = {**TINY, "data.data_dir": data_dir, **overrides}
    return [f"--config.{k}={v}" for k, v in values.items()]


def train_command(workdir, data_dir: str, *extra: str, **overrides) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mav_jax.train",
        "--config=configs/keyframes.py:tiny",
        f"--workdir={workdir}",
        *cli_flags(data_dir, **overrides),
        *extra,
    ]


def subprocess_env(devices: int = 8) -> dict:
    return {
        **os.environ,
        "JAX_NUM_CPU_DEVICES": str(devices),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(ROOT),
        "JAX_COMPILATION_CACHE_DIR": XLA_CACHE,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": str(XLA_CACHE_MIN_SECONDS),
    }


def start(command: list[str], devices: int = 8, log_path=None) -> subprocess.Popen:
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        command, cwd=ROOT, env=subprocess_env(devices), stdout=out, stderr=subprocess.STDOUT
    )
