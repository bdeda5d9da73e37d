"""What a user watches during training: TensorBoard scalars (clu writers), a progress bar,
throughput, the TFLOP/s per device that XLA's cost analysis of the compiled step implies (remat's
recomputation included), and model-FLOP utilisation where the chip's peak is known
(`model_flops`)."""

from __future__ import annotations

import time

import jax
import numpy as np
from clu import metric_writers
from tqdm import tqdm


def flops_per_device(compiled) -> float:
    """FLOPs one device runs per call of a compiled (SPMD-partitioned) function; 0 if unknown."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # older jaxlibs: one dict per program
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))


class TrainingMonitor:
    """Accumulates step metrics on device and reports every `log_every` steps (process 0 writes)."""

    def __init__(
        self,
        workdir: str,
        total_steps: int,
        start_step: int,
        global_batch: int,
        step_flops: float,
        model_flops: float = 0.0,
        peak_flops: float | None = None,
    ):
        """`step_flops`: XLA's FLOPs per device per step; `model_flops`: the model's (analytic,
        no remat) per device per step; `peak_flops`: the chip's dense bf16 peak (None: no MFU)."""
        self.is_chief = jax.process_index() == 0
        self.writer = metric_writers.create_default_writer(
            workdir, just_logging=not self.is_chief, asynchronous=True
        )
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            disable=not self.is_chief,
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        self.global_batch, self.step_flops = global_batch, step_flops
        self.model_flops, self.peak_flops = model_flops, peak_flops
        self.pending: list[dict] = []
        self.last_step, self.last_time = start_step, time.perf_counter()

    def record(self, metrics: dict) -> None:
        self.pending.append(metrics)  # device arrays: no host sync until `report`
        self.bar.update(1)

    def report(self, step: int, learning_rate: float) -> dict[str, float]:
        """Mean step metrics since the last report, and throughput over that interval."""
        if not self.pending:
            return {}
        values = jax.device_get(self.pending)
        now = time.perf_counter()
        steps_per_second = (step - self.last_step) / max(now - self.last_time, 1e-9)
        scalars = {
            # loss, grad_norm and whatever the stage logs (e.g. CLIP's retrieval accuracy)
            **{name: float(np.mean([m[name] for m in values])) for name in values[0]},
            "learning_rate": float(learning_rate),
            "steps_per_second": steps_per_second,
            "samples_per_second": steps_per_second * self.global_batch,
            "tflops_per_device": steps_per_second * self.step_flops / 1e12,
        }
        if self.model_flops:
            scalars["model_tflops_per_device"] = steps_per_second * self.model_flops / 1e12
        if self.model_flops and self.peak_flops:
            scalars["mfu"] = steps_per_second * self.model_flops / self.peak_flops
        self.writer.write_scalars(step, scalars)
        self.bar.set_postfix(
            loss=f"{scalars['loss']:.4f}", samples_s=f"{scalars['samples_per_second']:.1f}"
        )
        self.pending, self.last_step, self.last_time = [], step, now
        return scalars

    def write(self, step: int, scalars: dict[str, float]) -> None:
        """Scalars from elsewhere than the step (evaluators), to the same TensorBoard."""
        self.writer.write_scalars(step, scalars)

    def exclude(self, seconds: float) -> None:
        """Leave time spent on other work (sampling, checkpoint waits) out of the throughput."""
        self.last_time += seconds

    def close(self) -> None:
        self.bar.close()
        self.writer.flush()
        self.writer.close()
