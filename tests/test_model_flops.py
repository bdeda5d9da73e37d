"""Model FLOPs (3 x the forward pass's matmuls and convolutions, no remat) against XLA's own count
of a training gradient, and the MFU the trainer logs from them."""

import jax
import numpy as np
import pytest
from flax import nnx

from mav_jax.configs import clip, keyframes, prior
from mav_jax.plan import example_batch
from mav_jax.stages import stage_from_config
from mav_jax.train.metrics import TrainingMonitor
from mav_jax.train.model_flops import forward_flops, peak_flops, train_step_model_flops

# XLA counts every elementwise op too (norms, activations, softmax: more), and skips a SAME
# convolution's padded taps (fewer); at the tiny configs the two differ by under 3% (measured:
# U-Net 1.025, CLIP 0.992, prior 0.972 of XLA's figure).
TOLERANCE = 0.05


def _analytic_and_xla(config):
    stage = stage_from_config(config)
    graphdef, params = nnx.split(stage.build_model(nnx.Rngs(0)), nnx.Param)
    batch = {k: np.zeros(s.shape, s.dtype) for k, s in example_batch(stage, 4).items()}

    def loss(params, batch):
        return stage.loss(nnx.merge(graphdef, params), batch, jax.random.key(0))[0]

    compiled = jax.jit(jax.grad(loss)).lower(params, batch).compile()
    return train_step_model_flops(stage, graphdef, params, batch), compiled.cost_analysis()["flops"]


def test_a_matmul_and_a_convolution_count_exactly():
    a, w = np.ones((4, 8, 16), np.float32), np.ones((16, 32), np.float32)
    assert forward_flops(lambda a, w: a @ w, a, w) == 2 * 4 * 8 * 16 * 32
    x, k = np.ones((2, 8, 8, 3), np.float32), np.ones((3, 3, 3, 5), np.float32)
    conv = lambda x, k: jax.lax.conv_general_dilated(  # noqa: E731
        x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    assert forward_flops(conv, x, k) == 2 * (2 * 8 * 8 * 5) * (3 * 3 * 3)
    scanned = lambda a, w: jax.lax.scan(lambda c, _: (c @ w[:, :16], None), a, length=3)[0]  # noqa: E731
    assert forward_flops(scanned, a, w) == 3 * 2 * 4 * 8 * 16 * 16


def test_unet_model_flops_match_xla_and_ignore_remat():
    config = keyframes.get_config("tiny")
    config.phase = "video"
    analytic, xla = _analytic_and_xla(config)
    assert analytic == pytest.approx(xla, rel=TOLERANCE)
    config.unet.remat = "full"
    analytic_remat, xla_remat = _analytic_and_xla(config)
    assert analytic_remat == analytic  # the model's FLOPs: remat's recomputation is not in them
    assert xla_remat > 1.1 * xla  # ... but XLA runs it


@pytest.mark.parametrize("module", [clip, prior], ids=["clip", "prior"])
def test_transformer_model_flops_match_xla(module):
    analytic, xla = _analytic_and_xla(module.get_config("tiny"))
    assert analytic == pytest.approx(xla, rel=TOLERANCE)


def test_the_monitor_logs_mfu_only_where_the_peak_is_known(tmp_path):
    assert peak_flops() is None  # CPUs have no entry
    monitor = TrainingMonitor(str(tmp_path), 10, 0, 8, 3e12, model_flops=2e12, peak_flops=1e13)
    monitor.record({"loss": np.float32(1.0)})
    monitor.last_time -= 1.0  # one step in (at least) one second
    scalars = monitor.report(1, 0.1)
    steps = scalars["steps_per_second"]
    assert scalars["mfu"] == pytest.approx(steps * 2e12 / 1e13)
    assert scalars["model_tflops_per_device"] == pytest.approx(steps * 2.0)
    unknown = TrainingMonitor(str(tmp_path / "cpu"), 10, 0, 8, 3e12, model_flops=2e12)
    unknown.record({"loss": np.float32(1.0)})
    assert "mfu" not in unknown.report(1, 0.1)
    monitor.close()
    unknown.close()


def test_the_accelerator_benchmark_dry_runs_on_cpu(tmp_path):
    """bench/accelerator.py's CPU dry run: a tiny step timed with its model FLOPs, and cuDNN
    attention skipped with the reason (this machine has no GPU)."""
    import json
    import subprocess
    import sys

    from conftest import ROOT
    from trainer_helpers import subprocess_env

    out = tmp_path / "accelerator.json"
    flags = ["--tiny", "--steps=1", "--warmup=0", "--no-peer", "--remats=none", "--dtype=float32"]
    shape = ["--batch=1", "--frames=2", "--size=16", f"--json={out}"]
    done = subprocess.run(
        [sys.executable, "bench/accelerator.py", *flags, *shape],
        cwd=ROOT,
        env=subprocess_env(devices=1),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    run = result["mav_jax"]["xla, remat none"]
    assert run["ms_per_step"] > 0 and run["model_flops_per_step"] > 0 and run["mfu"] is None
    assert "needs an NVIDIA GPU" in result["mav_jax"]["cudnn"]["skipped"]
