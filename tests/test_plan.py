"""The plan tool compiles the real train step on a simulated mesh without allocating the model,
and its per-device memory falls as the fsdp axis grows."""

import pytest
from trainer_helpers import tiny_config

from mav_jax.parallel.sharding import parse_mesh
from mav_jax.plan import StepPlan, largest_batch, plan_step


def test_per_device_memory_falls_as_fsdp_grows(tmp_path):
    config = tiny_config(str(tmp_path), phase="video")  # no dataset needed: abstract inputs only
    narrow = plan_step(config, {"data": 4, "fsdp": 2}, per_device_batch=1)
    wide = plan_step(config, {"fsdp": 8}, per_device_batch=1)
    assert narrow.params == wide.params > 100_000
    assert wide.argument_bytes < 0.6 * narrow.argument_bytes  # state split 8 ways, not 2
    assert wide.peak_bytes < narrow.peak_bytes
    assert wide.flops_per_device > 0


def test_largest_batch_extrapolates_memory_linearly():
    def plan(batch, temp):
        return StepPlan(
            {},
            batch,
            1,
            0.0,
            argument_bytes=100,
            output_bytes=100,
            alias_bytes=100,
            temp_bytes=temp,
        )

    assert largest_batch(plan(1, 50), plan(2, 80), hbm_bytes=300) == 6  # 120 + 30 b <= 300


def test_mesh_flag_is_checked():
    assert parse_mesh("fsdp:64,data:2") == {"fsdp": 64, "data": 2}
    with pytest.raises(ValueError, match="AXIS:SIZE"):
        parse_mesh("fsdp=64")


def test_tpu_topologies_are_checked_before_anything_compiles():
    from mav_jax.plan_tpu import PlanError, parse_topology

    assert parse_topology("v5e:8x8") == ("v5e", (8, 8))
    assert parse_topology("v5p:4x4x4") == ("v5p", (4, 4, 4))
    with pytest.raises(PlanError, match="Unknown TPU topology 'v7x:2x2'"):
        parse_topology("v7x:2x2")
    with pytest.raises(PlanError, match="v4 topology has 3 dimensions"):
        parse_topology("v4:4x4")


def test_without_the_tpu_compiler_the_plan_says_what_to_install(tmp_path):
    import importlib.util
    import subprocess
    import sys

    from conftest import ROOT

    if importlib.util.find_spec("libtpu") is not None:
        pytest.skip("libtpu is installed here: the message is for machines without it")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "mav_jax.plan", "--config=configs/keyframes.py:tiny"),
            *("--mesh=fsdp:4", "--topology=v5e:2x2"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "The TPU compiler is not installed: pip install -e '.[plan]'" in done.stderr
