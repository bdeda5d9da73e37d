"""The plan tool compiles the real train step on a simulated mesh without allocating the model,
and its per-device memory falls as the fsdp axis grows."""

import importlib.util
import os

import pytest
from trainer_helpers import ROOT, tiny_config

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


def test_without_the_tpu_compiler_the_plan_says_what_to_install(monkeypatch):
    import importlib.util

    from mav_jax import plan_tpu

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "libtpu" else real(name, *a)
    )
    with pytest.raises(plan_tpu.PlanError, match=r"pip install -e '\.\[plan\]'"):
        plan_tpu.topology_devices("v5e:2x2")


def test_the_batch_search_stops_at_a_candidate_the_compiler_cannot_build(monkeypatch):
    """A larger micro-batch whose op needs more scoped VMEM than the config allows ends the search
    with the reason, keeping what was found; at the config's own micro-batch it stays an error.
    The compiler is faked here: the search's logic is under test, not libtpu."""
    import types

    import ml_collections

    from mav_jax import plan_tpu

    def fake_compile(config, mesh_shape, devices, batch, num_slices):
        if batch >= config.vmem_fails_from:
            raise plan_tpu.PlanError(f"%copy needs {batch}M of scoped VMEM")
        return {"peak_gib": float(batch), "flops": 1e12, "bytes_accessed": 1e9, "compile_s": 1.0}

    chip = types.SimpleNamespace(device_kind="TPU v5 lite")
    monkeypatch.setattr(plan_tpu, "topology_devices", lambda name, num_slices=1: [chip] * 4)
    monkeypatch.setattr(plan_tpu, "compile_step", fake_compile)
    config = ml_collections.ConfigDict(
        {"train": {"global_batch_size": 4, "grad_accum_steps": 1}, "vmem_fails_from": 3}
    )
    report = plan_tpu.plan_on_topology(config, {"fsdp": 4}, "v5e:2x2")
    assert report["fits"] and report["largest_micro_batch_per_device"] == 2
    assert report["search_stopped_by"].startswith("micro-batch 3: %copy needs 3M")
    assert not report["largest_is_search_limit"]
    config.vmem_fails_from = 1
    with pytest.raises(plan_tpu.PlanError, match="needs 1M"):
        plan_tpu.plan_on_topology(config, {"fsdp": 4}, "v5e:2x2")


def _plan_cli(tmp_path, *flags):
    """`python -m mav_jax.plan` as a user runs it: (return code, stderr, JSON report or None)."""
    import json
    import subprocess
    import sys

    out = tmp_path / "plan.json"
    done = subprocess.run(
        [sys.executable, "-m", "mav_jax.plan", *flags, f"--json={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    return done.returncode, done.stderr, json.loads(out.read_text()) if out.exists() else None


def _run_child(code: str):
    """Python `code` in a child process on the CPU platform: a process that builds a TPU topology
    holds libtpu's lockfile until it exits, so the tests' own process never does."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


needs_libtpu = pytest.mark.skipif(
    importlib.util.find_spec("libtpu") is None,
    reason="the TPU compiler (pip install -e '.[plan]') is not installed; CI installs it",
)


@needs_libtpu
def test_a_tiny_step_compiles_for_a_tpu_slice_and_an_oversized_batch_does_not_fit(tmp_path):
    tiny = [
        *("--config=configs/keyframes.py:tiny", "--topology=v5e:2x2", "--mesh=fsdp:4"),
        # One level attending at 32x32 (splash): a third less to compile than the tiny U-Net.
        *("--config.unet.channel_mults=(1,)", "--config.unet.attention_levels=(0,)"),
    ]
    code, err, report = _plan_cli(tmp_path, *tiny, "--nosearch_batch")
    assert code == 0, err[-2000:]
    assert report["device_kind"] == "TPU v5 lite" and report["devices"] == 4
    assert report["fits"] and 0 < report["peak_gib"] < report["hbm_gib_per_device"] == 16
    assert (
        report["argument_gib"] > 0
        and report["flops"] > 1e9
        and report["roofline_s_per_micro_batch"] > 0
    )
    # 65,536 images a chip: the compiler refuses the program; the plan says so, it does not crash.
    code, err, report = _plan_cli(
        tmp_path, *tiny, "--nosearch_batch", "--config.train.global_batch_size=262144"
    )
    assert code == 0, err[-2000:]
    assert report["micro_batch_per_device"] == 65536
    assert report["fits"] is False and report["peak_gib"] > 16, report
    assert "memory" in report["compiler_says"].lower()


@needs_libtpu
def test_a_scoped_vmem_shortfall_is_a_plan_error_naming_the_flag():
    """An op whose working set exceeds the scoped-VMEM option is the user's setting to raise, not
    "does not fit HBM": compiled in a child process, which then holds libtpu's lockfile, not us."""
    code = """
import jax, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from mav_jax.plan_tpu import PlanError, compile_or_refusal, topology_devices
mesh = Mesh(topology_devices("v5e:2x2"), ("d",))
x = jax.ShapeDtypeStruct((4, 1024, 8, 1024), jnp.float32, sharding=NamedSharding(mesh, P("d")))
lowered = jax.jit(lambda x: jnp.transpose(jnp.exp(x), (0, 3, 2, 1))).lower(x)
compiled, refusal = compile_or_refusal(lowered, {"xla_tpu_scoped_vmem_limit_kib": 4096})
assert compiled is not None and refusal is None
try:
    compile_or_refusal(lowered, {"xla_tpu_scoped_vmem_limit_kib": 64})  # its transpose needs 512K
except PlanError as error:
    print("PLAN ERROR:", error)
"""
    done = _run_child(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PLAN ERROR:" in done.stdout and "xla_tpu_scoped_vmem_limit_kib" in done.stdout
    assert "needs 512.0K and the limit is 64.0K" in done.stdout, done.stdout


@needs_libtpu
def test_splash_min_tokens_sends_the_temporal_attention_to_splash_on_tpu():
    """↑F's 76-frame temporal attention is shorter than a splash block; `splash_min_tokens` (64 in
    its paper config) is what sends it to the Pallas kernel when compiling for TPU. Lowered only,
    for 4 compile-only v5e chips, in a child process (which then holds libtpu's lockfile)."""
    code = """
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from mav_jax.nn.pseudo3d import Pseudo3DAttention
from mav_jax.parallel.mesh_context import use_mesh
from mav_jax.plan_tpu import topology_devices
mesh = Mesh(np.array(topology_devices("v5e:2x2")), ("fsdp",))
x = jax.ShapeDtypeStruct((4, 8, 2, 2, 16), jnp.float32, sharding=NamedSharding(mesh, P("fsdp")))
for min_tokens in (128, 8):  # (B, F=8, H*W=4, C): temporal 8 tokens, spatial 4
    graph, state = nnx.split(Pseudo3DAttention(16, 2, splash_min_tokens=min_tokens, rngs=nnx.Rngs(0)))
    state = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
    with use_mesh(mesh):
        text = jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).as_text()
    print(min_tokens, text.count("tpu_custom_call"))
"""
    done = _run_child(code)
    assert done.returncode == 0, done.stderr[-2000:]
    kernels = dict(line.split() for line in done.stdout.splitlines() if line[:1].isdigit())
    assert kernels["128"] == "0", done.stdout  # XLA attention everywhere
    assert int(kernels["8"]) >= 1, done.stdout  # the temporal attention only (spatial: 4 tokens)


def test_bad_plan_input_is_refused_before_compiling(tmp_path):
    flags = ["--config=configs/keyframes.py:tiny", "--nosearch_batch"]
    cases = {
        "Unknown TPU topology 'v9:2x2'": ["--topology=v9:2x2", "--mesh=fsdp:4"],
        "remat must be one of": ["--config.unet.remat=sometimes", "--mesh=fsdp:2"],
        "context axis (2) must divide the stage's 1 frames": ["--mesh=fsdp:2,context:2"],
    }
    if importlib.util.find_spec("libtpu") is not None:
        cases["has 8 devices; 1 x v5e:2x2 has 4"] = ["--topology=v5e:2x2", "--mesh=fsdp:8"]
    for message, extra in cases.items():
        code, err, report = _plan_cli(tmp_path, *flags, *extra)
        assert code == 1 and message in err and report is None, (message, err[-1500:])


def test_plan_table_meshes_cap_fsdp_and_put_the_rest_on_data():
    spec = importlib.util.spec_from_file_location("plan_table", ROOT / "bench" / "plan_table.py")
    plan_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan_table)
    assert plan_table.slice_mesh(128, 1) == "data:4,fsdp:32"
    assert plan_table.slice_mesh(64, 16) == "fsdp:4,context:16"
    assert plan_table.slice_mesh(64, 1) == "data:2,fsdp:32"
    assert plan_table.slice_mesh(16, 1) == "fsdp:16"
    assert plan_table.slice_mesh(48, 1) == "data:2,fsdp:24"  # fsdp divides the shards
