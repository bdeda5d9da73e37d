"""One U-Net training step (forward, backward, AdamW) on this host: mav_jax vs make-a-video-pytorch.

Configuration (matched on both sides): base width 32, widths x(1, 2, 4), attention (4 heads) on the
two lower-resolution levels, timestep conditioning, pseudo-3D convs and temporal attention,
batch 4 of 8 frames at 32x32x3, eps-MSE loss, AdamW. mav_jax uses one res block per level
(~4.4M params); make-a-video-pytorch's SpaceTimeUnet uses resnet_block_depths=2 (its first block
is the conditioned one), ~4.1M params, no temporal downsampling.

mav_jax runs twice: on one XLA device (XLA's own thread pool spreads each op over the cores), and
as the trainer runs on CPU, data-parallel over one device per core (`parallel.host_devices`: the
batch split, gradients all-reduced). Reports ms/step (median over timed steps), samples/s,
XLA-counted FLOPs per step, achieved GFLOP/s, this host's plain float32 matmul GFLOP/s (the
roofline), and mav_jax time / peer time for both.

    python bench/unet_step.py                 # both sides
    python bench/unet_step.py --no-peer       # mav_jax only (torch not installed)
    python bench/unet_step.py --json=out.json # also write the figures
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from mav_jax.nn import SpatioTemporalUNet, UNetConfig
from mav_jax.parallel import make_mesh
from mav_jax.parallel.host_devices import use_host_cores
from mav_jax.train.model_flops import host_matmul_gflops

BATCH, FRAMES, SIZE, CHANNELS = 4, 8, 32, 3
CONFIG = UNetConfig(
    base_channels=32,
    channel_mults=(1, 2, 4),
    num_res_blocks=1,
    attention_levels=(1, 2),
    num_heads=4,
    temporal=True,
    timestep_conditioning=True,
)


def _median_ms(step, steps: int, warmup: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), times


def bench_mav_jax(
    steps: int,
    warmup: int,
    config: UNetConfig = CONFIG,
    shape: tuple[int, int, int] = (BATCH, FRAMES, SIZE),
    devices: int = 1,
) -> dict:
    """One donated train step of `config`'s U-Net on (batch, frames, size) clips, timed; on
    `devices` > 1 the batch is split over that many devices and the parameters replicated."""
    from mav_jax.train.model_flops import forward_flops

    batch, frames, size = shape
    model = SpatioTemporalUNet(config, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer = optax.adamw(1e-4)
    opt_state = optimizer.init(params)
    num_params = sum(x.size for x in jax.tree.leaves(params))

    def loss_fn(params, x, t, target):
        return jnp.mean((nnx.merge(graphdef, params)(x, t) - target) ** 2)

    mesh = make_mesh({"data": devices}, jax.devices()[:devices])
    replicated, split = (
        NamedSharding(mesh, PartitionSpec()),
        NamedSharding(mesh, PartitionSpec("data")),
    )
    params, opt_state = jax.device_put((params, opt_state), replicated)

    # Parameters and optimiser state are donated, as the trainer's step does.
    @functools.partial(
        jax.jit, donate_argnums=(0, 1), out_shardings=(replicated, replicated, replicated)
    )
    def train_step(params, opt_state, x, t, target):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, t, target)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    keys = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(keys[0], (batch, frames, size, size, CHANNELS))
    target = jax.random.normal(keys[1], x.shape)
    t = jax.random.randint(keys[2], (batch,), 0, 1000).astype(jnp.float32)
    model_flops = 3 * forward_flops(loss_fn, params, x, t, target)  # no remat recomputation
    x, target, t = jax.device_put((x, target, t), split)

    start = time.perf_counter()
    compiled = train_step.lower(params, opt_state, x, t, target).compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = devices * float(cost.get("flops", float("nan")))  # the cost analysis is per device

    state = {"params": params, "opt": opt_state}

    def step():
        state["params"], state["opt"], loss = compiled(state["params"], state["opt"], x, t, target)
        loss.block_until_ready()

    ms, times = _median_ms(step, steps, warmup)
    return {
        "devices": devices,
        "params": num_params,
        "compile_s": compile_s,
        "ms_per_step": ms,
        "samples_per_s": batch / (ms / 1000),
        "flops_per_step": flops,
        "model_flops_per_step": model_flops,
        "achieved_gflops": flops / (ms / 1000) / 1e9,
        "step_times_ms": times,
    }


PEER = dict(
    dim=32,
    channels=CHANNELS,
    dim_mult=(1, 2, 4),
    self_attns=(False, True, True),
    temporal_compression=(False, False, False),
    resnet_block_depths=(2, 2, 2),
    attn_heads=4,
    attn_dim_head=32,
    condition_on_timestep=True,
)


def bench_peer(
    steps: int,
    warmup: int,
    peer: dict = PEER,
    shape: tuple[int, int, int] = (BATCH, FRAMES, SIZE),
    device: str = "cpu",
    dtype=None,
    compiled: bool = False,
) -> dict:
    """make-a-video-pytorch's SpaceTimeUnet, one AdamW step (eager, or torch.compile)."""
    import torch
    from make_a_video_pytorch import SpaceTimeUnet

    batch, frames, size = shape
    torch.manual_seed(0)
    model = SpaceTimeUnet(**peer).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compiled else model
    x = torch.randn(batch, CHANNELS, frames, size, size, device=device)  # channels-first
    target = torch.randn_like(x)
    t = torch.randint(0, 1000, (batch,), device=device).float()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = torch.mean((forward(x, t) - target) ** 2)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:  # matmul/conv FLOPs of one step (fwd + bwd)
        step()
    flops = float(counter.get_total_flops())
    ms, times = _median_ms(step, steps, warmup)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "flops_per_step": flops,
        "achieved_gflops": flops / (ms / 1000) / 1e9,
        "ms_per_step": ms,
        "samples_per_s": batch / (ms / 1000),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "step_times_ms": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compilation")
    parser.add_argument("--no-peer", action="store_true", help="skip make-a-video-pytorch")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    use_host_cores([BATCH])  # before JAX starts: one CPU device per core, as the trainer
    host = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }
    runs = [bench_mav_jax(args.steps, args.warmup)]
    if jax.device_count() > 1:
        runs.append(bench_mav_jax(args.steps, args.warmup, devices=jax.device_count()))
    roofline = host_matmul_gflops()
    result = {
        "host": host,
        "config": {"batch": BATCH, "frames": FRAMES, "size": SIZE},
        "mav_jax": runs[-1],  # as the trainer runs here
        "mav_jax_one_device": runs[0],
        "matmul_roofline_gflops": roofline,
    }
    print(f"host: {host['processor']} x{host['cpu_count']}, jax {host['jax']} on {host['backend']}")
    print(f"config: batch {BATCH}, {FRAMES} frames, {SIZE}x{SIZE}x{CHANNELS}, timestep-conditioned")
    for ours in runs:
        print(
            f"mav_jax ({ours['devices']} device{'s' if ours['devices'] > 1 else ''}): "
            f"{ours['params'] / 1e6:.2f}M params, compile {ours['compile_s']:.1f}s, "
            f"{ours['ms_per_step']:.1f} ms/step, {ours['samples_per_s']:.2f} samples/s, "
            f"{ours['flops_per_step'] / 1e9:.2f} GFLOP/step (XLA), "
            f"{ours['achieved_gflops']:.1f} GFLOP/s "
            f"({100 * ours['achieved_gflops'] / roofline:.0f}% of matmul {roofline:.1f} GFLOP/s)"
        )
    if not args.no_peer:
        peer = bench_peer(args.steps, args.warmup)
        result["peer"] = peer
        result["ours_over_peer_time"] = runs[-1]["ms_per_step"] / peer["ms_per_step"]
        result["one_device_over_peer_time"] = runs[0]["ms_per_step"] / peer["ms_per_step"]
        print(
            f"peer    : make-a-video-pytorch SpaceTimeUnet, {peer['params'] / 1e6:.2f}M params, "
            f"torch {peer['torch']} ({peer['torch_threads']} threads), {peer['ms_per_step']:.1f} ms/step, "
            f"{peer['samples_per_s']:.2f} samples/s, {peer['flops_per_step'] / 1e9:.2f} GFLOP/step "
            f"(torch FlopCounterMode: matmuls and convs only), {peer['achieved_gflops']:.1f} GFLOP/s"
        )
        print(
            f"mav_jax time / peer time: {result['ours_over_peer_time']:.2f} as the trainer runs "
            f"({runs[-1]['devices']} device(s)), {result['one_device_over_peer_time']:.2f} on one device"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
