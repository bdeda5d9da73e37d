"""A CPU run gets one device per core (fewer where its batches do not split), unless the user chose."""

import os
import subprocess
import sys

import pytest
from trainer_helpers import ROOT

from mav_jax.configs import keyframes
from mav_jax.parallel.host_devices import device_count_for, use_host_cores
from mav_jax.train.config_checks import batches_split_over_devices


@pytest.mark.parametrize(
    ("batches", "cores", "expected"),
    [([64, 16, 8], 2, 2), ([6], 4, 3), ([5], 2, 1), ([12, 18], 8, 6), ([16], 1, 1), ([], 4, 1)],
)
def test_device_count_is_the_largest_that_splits_every_batch(batches, cores, expected):
    assert device_count_for(batches, cores) == expected


def test_a_started_backend_is_left_alone():
    import jax

    assert use_host_cores([16], cores=2) is None  # conftest chose 8, and JAX has started
    assert jax.device_count() == 8


def test_batches_come_from_the_micro_batch_and_evaluators_unless_the_mesh_is_fixed():
    config = keyframes.get_config("tiny")
    config.train.update(global_batch_size=24, grad_accum_steps=2)
    config.evals = {
        "held": {"type": "heldout_loss", "num_examples": 10},
        "videos": {"type": "sample_quality", "i3d": "package"},  # num_videos: its default, 8
    }
    assert batches_split_over_devices(config) == [12, 10, 8]
    config.mesh.update(data=1, fsdp=2)  # the config names its device count
    assert batches_split_over_devices(config) is None
    config.mesh.update(data=-1, fsdp=2)  # fsdp fixed above 1: the count is the user's
    assert batches_split_over_devices(config) is None


def _device_count_in_fresh_process(code: str, **env) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    run = subprocess.run(
        [sys.executable, "-c", code + "\nimport jax; print(jax.device_count())"],
        env={**clean, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return int(run.stdout.split()[-1])


def test_a_fresh_process_gets_the_count_and_a_user_choice_wins():
    set_four = (
        "from mav_jax.parallel.host_devices import use_host_cores\nuse_host_cores([8], cores=4)"
    )
    assert _device_count_in_fresh_process(set_four) == 4
    assert _device_count_in_fresh_process(set_four, JAX_NUM_CPU_DEVICES="3") == 3
    flag = {"XLA_FLAGS": "--xla_force_host_platform_device_count=5"}
    assert _device_count_in_fresh_process(set_four, **flag) == 5
