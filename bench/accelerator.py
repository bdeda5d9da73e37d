"""The keyframe U-Net's training step on one accelerator at paper width: mav_jax (bf16, `xla` vs
`cudnn` attention, two remat policies) against make-a-video-pytorch's SpaceTimeUnet (eager and
torch.compile), in ms/step, samples/s and MFU against the card's dense bf16 peak.

    python bench/accelerator.py [--batch=4 --frames=16 --size=64] [--no-peer] [--json=OUT]
    python bench/accelerator.py --tiny --steps=1 --warmup=0 --no-peer     # CPU dry run

The U-Net is the paper keyframe decoder's (configs/common.py: width 320, mults 1-2-3-4, 3 res
blocks, attention at the three lower levels, 8 heads), timestep-conditioned only (the CLIP
embedding path is a few matmuls); `--tiny` is bench/unet_step.py's small config. MFU = model
FLOPs (3 x forward matmuls and convolutions, `mav_jax.train.model_flops`) / step time / peak;
XLA's own FLOP count (remat included) is reported beside it. Attention kernels this backend
lacks (cuDNN off NVIDIA GPUs) are skipped and said so. Needs `pip install -e '.[cuda]'` on a GPU
host and, for the peer, `pip install -e '.[bench]'` and `pip install --no-deps
make-a-video-pytorch`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import jax

from mav_jax.configs import common
from mav_jax.nn import UNetConfig
from mav_jax.nn.attention_kernels import attention_impl_problems
from mav_jax.train.model_flops import peak_flops

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import unet_step  # noqa: E402  (bench/unet_step.py: the step and the peer, shared)

PAPER_PEER = dict(  # SpaceTimeUnet at the matched size: width 320, mults 1-2-3-4, attention x3
    dim=320,
    channels=3,
    dim_mult=(1, 2, 3, 4),
    self_attns=(False, True, True, True),
    temporal_compression=(False, False, False, False),
    resnet_block_depths=(3, 3, 3, 3),
    attn_heads=8,
    attn_dim_head=64,
    condition_on_timestep=True,
)


def paper_unet() -> UNetConfig:
    cfg = common.unet_config("paper")
    values = {k: v for k, v in cfg.items() if k in {f.name for f in dataclasses.fields(UNetConfig)}}
    return UNetConfig.from_dict({**values, "embedding_dim": 0, "dropout": 0.0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="bench/unet_step.py's small U-Net")
    parser.add_argument("--dtype", default="bfloat16", help="compute dtype (float32: CPU dry runs)")
    parser.add_argument("--impls", default="xla,cudnn", help="attention kernels to time")
    parser.add_argument(
        "--remats", default="none,full", help="remat policies to time (none, full, save_dots)"
    )
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()

    base = unet_step.CONFIG if args.tiny else paper_unet()
    shape = (args.batch, args.frames, args.size)
    device = jax.devices()[0]
    peak = peak_flops(device)
    result = {"device": device.device_kind, "backend": jax.default_backend(), "shape": shape}
    runs = {}
    for impl in args.impls.split(","):
        problems = attention_impl_problems(impl)
        if problems:
            runs[impl] = {"skipped": problems[0]}
            print(f"{impl}: skipped ({problems[0]})")
            continue
        for remat in args.remats.split(","):
            config = base.replace(dtype=args.dtype, attention_impl=impl, remat=remat)
            run = unet_step.bench_mav_jax(args.steps, args.warmup, config, shape)
            seconds = run["ms_per_step"] / 1000
            run["mfu"] = run["model_flops_per_step"] / seconds / peak if peak else None
            run.pop("step_times_ms")
            runs[f"{impl}, remat {remat}"] = run
            mfu = f"{100 * run['mfu']:.1f}%" if run["mfu"] is not None else "n/a (no peak)"
            print(
                f"mav_jax {impl:5s} remat {remat:9s}: {run['ms_per_step']:.1f} "
                f"ms/step, {run['samples_per_s']:.2f} samples/s, MFU {mfu}, "
                f"{run['model_flops_per_step'] / 1e12:.3f} model TFLOP/step "
                f"({run['flops_per_step'] / 1e12:.3f} by XLA)"
            )
    result["mav_jax"] = runs
    if not args.no_peer:
        import torch

        on_gpu = torch.cuda.is_available()
        peer = unet_step.PEER if args.tiny else PAPER_PEER
        for label, compiled in (("eager", False), ("torch.compile", True)):
            try:
                run = unet_step.bench_peer(
                    args.steps,
                    args.warmup,
                    peer,
                    shape,
                    device="cuda" if on_gpu else "cpu",
                    dtype=torch.bfloat16 if on_gpu else None,
                    compiled=compiled,
                )
            except Exception as error:  # torch.compile does not work everywhere: say so
                result[f"peer {label}"] = {"failed": repr(error)}
                print(f"peer {label}: failed ({error!r})")
                continue
            run.pop("step_times_ms")
            result[f"peer {label}"] = run
            print(
                f"peer {label}: {run['ms_per_step']:.1f} ms/step, {run['samples_per_s']:.2f} samples/s"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
