"""Model FLOPs and model-FLOP utilisation (MFU), counted as MaxText and MaxDiffusion count them.

The model FLOPs of a training step are those of the network's matmuls, convolutions and attention
in one forward pass, times 3 (the backward pass computes a gradient for each operand of each
product: twice the forward), and never remat's recomputation. They are counted from the forward
program itself (`jaxpr_flops` walks the traced jaxpr: every `dot_general` is 2 x output size x
contracted size, every convolution 2 x output size x kernel window x input channels per group),
so one function per network stays exact whatever the architecture; elementwise work (norms,
activations, softmax, the optimizer) is left out, as in MaxText.

MFU = model FLOPs per device per second / the chip's dense bf16 peak (`PEAK_TFLOPS`).
"""

from __future__ import annotations

import math
import statistics
import time

import jax

# Dense bf16 peak TFLOP/s per chip (jax's device_kind -> figure), from the vendors' pages:
# TPU v4 275, v5e 197, v5p 459, v6e (Trillium) 918: cloud.google.com/tpu/docs/system-architecture-tpu-vm
# and the per-version pages; NVIDIA A100 312, H100 SXM 989, H200 989 (dense, without sparsity):
# the A100, H100 and H200 datasheets.
PEAK_TFLOPS = {
    "TPU v4": 275.0,
    "TPU v5 lite": 197.0,
    "TPU v5e": 197.0,
    "TPU v5": 459.0,
    "TPU v5p": 459.0,
    "TPU v6 lite": 918.0,
    "TPU v6e": 918.0,
    "NVIDIA A100-SXM4-80GB": 312.0,
    "NVIDIA A100-SXM4-40GB": 312.0,
    "NVIDIA H100 80GB HBM3": 989.0,
    "NVIDIA H200": 989.0,
}


def peak_flops(device: jax.Device | None = None) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None when unknown (CPUs)."""
    kind = (device or jax.devices()[0]).device_kind
    tflops = PEAK_TFLOPS.get(kind)
    if tflops is None and kind.startswith("NVIDIA H200"):
        tflops = PEAK_TFLOPS["NVIDIA H200"]
    return None if tflops is None else tflops * 1e12


def _sub_jaxprs(params: dict):
    for value in params.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
                yield item.jaxpr


def jaxpr_flops(jaxpr) -> float:
    """Matmul and convolution FLOPs of a (closed) jaxpr, sub-programs included (a scan's body
    counts `length` times; a cond counts its costliest branch)."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            out = eqn.outvars[0].aval.shape
            total += 2.0 * math.prod(out) * math.prod(lhs[i] for i in contract)
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, *spatial)
            window = math.prod(rhs[i] for i in spec[2:])
            out = eqn.outvars[0].aval.shape
            total += 2.0 * math.prod(out) * window * rhs[spec[1]]
        elif name == "cond":
            total += max(jaxpr_flops(branch) for branch in eqn.params["branches"])
        else:
            inner = sum(jaxpr_flops(sub) for sub in _sub_jaxprs(eqn.params))
            total += inner * (eqn.params.get("length", 1) if name == "scan" else 1)
    return total


def forward_flops(fn, *args) -> float:
    """Matmul and convolution FLOPs of one call of `fn(*args)` (args may be abstract)."""
    return jaxpr_flops(jax.make_jaxpr(fn)(*args))


def train_step_model_flops(stage, graphdef, abstract_params, abstract_batch) -> float:
    """Model FLOPs of one training step of `stage` over a (global) batch: 3 x its loss's forward."""
    from flax import nnx

    def loss(params, batch):
        model = nnx.merge(graphdef, params)
        return stage.loss(model, batch, jax.random.key(0))[0]

    return 3.0 * forward_flops(loss, abstract_params, abstract_batch)


def host_matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Plain float32 n x n matmul GFLOP/s through XLA on the default device (median of
    `repeats`): how fast this host is today, the yardstick for comparing timings across days."""
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    for _ in range(2):
        matmul(a).block_until_ready()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).block_until_ready()
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(seconds) / 1e9
