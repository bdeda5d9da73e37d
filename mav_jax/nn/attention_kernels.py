"""Attention kernels by backend: one `attend` for every attention in mav_jax.

* `xla`: `jax.nn.dot_product_attention(implementation="xla")`, any backend, any dtype.
* `cudnn`: cuDNN's fused flash attention on NVIDIA GPUs (`implementation="cudnn"`); it takes
  bf16/fp16, so inputs are cast to bf16 and the output back.
* `splash`: the Pallas TPU flash kernel (`jax.experimental.pallas.ops.tpu.splash_attention`).
  Its blocks tile sequences in multiples of 128, and the U-Net's lengths (e.g. 32x32 = 1024
  spatial tokens, 16 frames, 4 context tokens) often are not: sequences are padded to the next
  multiple of 128 and the padding keys excluded through segment ids, which also carry the prior's
  per-example padding mask. Splash does not scale q by 1/sqrt(D) (measured): it is done here. A
  Mosaic kernel cannot be partitioned automatically, so inside `parallel.use_mesh(mesh)` (what
  the trainer and the samplers run under) it runs per shard through `shard_map` over the batch
  axes (and `context`, where frames are split over it).
* `auto`: `cudnn` on GPU; on TPU `splash` for sequences of at least `splash_min_tokens` (default
  one 128-token block: the U-Net's spatial attention at 16x16 pixels and up) and `xla` for shorter
  ones (temporal attention over 16 frames, cross-attention to 4 tokens, CLIP's 77: padded to 128
  they took 5.6x the temporaries of XLA attention in a tiny U-Net step compiled for v5e:2x2;
  ↑F's 76-frame temporal attention, whose XLA softmax needs more scoped VMEM than the compile
  budget allows, asks for splash from 64), and only inside
  `use_mesh` or on one chip; `xla` elsewhere. The target is the mesh's platform when one is
  set (a CPU host compiling for TPU picks the TPU's kernels).

All take q (N, T, H, D), k and v (N, S, H, D), an optional key mask (N, S) (True: attend) or
`causal`, and return (N, T, H, D).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from mav_jax.parallel.mesh_context import current_mesh
from mav_jax.parallel.sharding import BATCH_AXES

ATTENTION_IMPLS = ("auto", "xla", "splash", "cudnn")
SPLASH_BLOCK = 128  # splash tiles sequences in blocks of this many tokens


def attention_impl_problems(impl: str, backend: str | None = None) -> list[str]:
    """What is wrong with asking for `impl` on `backend` (default: JAX's), in words. Only the
    fused kernels ask JAX for its backend, so checking a config does not start it."""
    if impl not in ATTENTION_IMPLS:
        return [f"attention_impl must be one of {ATTENTION_IMPLS}, got '{impl}'"]
    if impl in ("auto", "xla"):
        return []
    backend = backend or jax.default_backend()
    if impl == "cudnn" and backend != "gpu":
        return [
            f"attention_impl='cudnn' needs an NVIDIA GPU; this backend is '{backend}' "
            "(use 'auto' or 'xla')"
        ]
    if impl == "splash" and backend != "tpu":
        return [
            f"attention_impl='splash' needs a TPU; this backend is '{backend}' "
            "(use 'auto' or 'xla')"
        ]
    return []


def resolve_attention_impl(
    impl: str,
    backend: str | None = None,
    shortest: int | None = None,
    splash_min_tokens: int = SPLASH_BLOCK,
) -> str:
    """`auto` -> the fused kernel the backend has (on TPU: for sequences whose `shortest` is at
    least `splash_min_tokens`); other names pass through."""
    if impl != "auto":
        return impl
    backend = backend or _target_backend()
    if backend == "tpu":
        long_enough = shortest is None or shortest >= splash_min_tokens
        return "splash" if long_enough and _splash_placeable() else "xla"
    return "cudnn" if backend == "gpu" else "xla"


def _target_backend() -> str:
    """The platform the program is for: the current mesh's, else JAX's default backend."""
    mesh = current_mesh()
    return mesh.devices.flat[0].platform if mesh is not None else jax.default_backend()


def attend(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    mask: jax.Array | None = None,
    causal: bool = False,
    impl: str = "xla",
    splash_min_tokens: int = SPLASH_BLOCK,
    interpret: bool = False,
) -> jax.Array:
    """Softmax attention; see the module docstring. `interpret` runs splash's Pallas kernel in
    interpret mode (any backend: how the tests check it on CPU)."""
    shortest = min(q.shape[1], k.shape[1])
    impl = resolve_attention_impl(impl, shortest=shortest, splash_min_tokens=splash_min_tokens)
    if impl == "xla":
        bias_mask = None if mask is None else mask[:, None, None, :]  # (N, 1, 1, S)
        return jax.nn.dot_product_attention(
            q, k, v, mask=bias_mask, is_causal=causal, implementation="xla"
        )
    if impl == "cudnn":
        # cuDNN takes padding as key lengths: the valid keys must come first, as padding does.
        lengths = None if mask is None else jnp.sum(mask, axis=-1).astype(jnp.int32)
        out = jax.nn.dot_product_attention(
            q.astype(jnp.bfloat16),
            k.astype(jnp.bfloat16),
            v.astype(jnp.bfloat16),
            is_causal=causal,
            key_value_seq_lengths=lengths,
            implementation="cudnn",
        )
        return out.astype(q.dtype)
    if impl == "splash":
        return _splash(q, k, v, mask, causal, interpret)
    raise ValueError(attention_impl_problems(impl)[0])


def _splash_placeable() -> bool:
    """Whether splash can run here: under a mesh context (shard_map), or on one device."""
    return current_mesh() is not None or jax.device_count() == 1


def _padded(length: int) -> int:
    return SPLASH_BLOCK * math.ceil(length / SPLASH_BLOCK)


@functools.cache
def _splash_kernel(heads: int, q_len: int, kv_len: int, causal: bool, interpret: bool):
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_kernel as kernel,
    )
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_mask as masks,
    )

    shape = (q_len, kv_len)
    head_mask = masks.CausalMask(shape) if causal else masks.FullMask(shape)
    return kernel.make_splash_mha(
        masks.MultiHeadMask([head_mask] * heads),
        head_shards=1,
        q_seq_shards=1,
        interpret=interpret,
    )


def _splash_local(q, k, v, key_valid, causal: bool, interpret: bool):
    """Splash on this device's examples: q (n, T, H, D), k/v (n, S, H, D), key_valid (n, S)."""
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_kernel as kernel,
    )

    n, t, heads, dim = q.shape
    s = k.shape[1]
    tp, sp = _padded(t), _padded(s)
    q = jnp.pad(q * (1.0 / math.sqrt(dim)), ((0, 0), (0, tp - t), (0, 0), (0, 0)))
    k = jnp.pad(k, ((0, 0), (0, sp - s), (0, 0), (0, 0)))
    v = jnp.pad(v, ((0, 0), (0, sp - s), (0, 0), (0, 0)))
    valid = jnp.pad(key_valid, ((0, 0), (0, sp - s)))  # padding keys are invalid
    # Every query is segment 0; valid keys segment 0, the rest 1: queries never see them.
    segments = kernel.SegmentIds(
        q=jnp.zeros((n, tp), jnp.int32), kv=jnp.where(valid, 0, 1).astype(jnp.int32)
    )
    splash = _splash_kernel(heads, tp, sp, causal, interpret)
    heads_first = lambda x: jnp.swapaxes(x, 1, 2)  # noqa: E731  (n, L, H, D) <-> (n, H, L, D)
    out = jax.vmap(splash)(heads_first(q), heads_first(k), heads_first(v), segment_ids=segments)
    return heads_first(out)[:, :t]


def _splash(q, k, v, mask, causal: bool, interpret: bool):
    key_valid = jnp.ones(k.shape[:2], bool) if mask is None else mask.astype(bool)
    local = functools.partial(_splash_local, causal=causal, interpret=interpret)
    mesh = current_mesh()
    axes = tuple(a for a in (*BATCH_AXES, "context") if mesh is not None and a in mesh.axis_names)
    # Frames split over `context` split (B*F) sequences too; keep the axes that divide them.
    while axes and q.shape[0] % math.prod(mesh.shape[a] for a in axes):
        axes = axes[:-1]
    if not axes:
        return local(q, k, v, key_valid)
    spec = jax.sharding.PartitionSpec(axes)
    return jax.shard_map(
        local, mesh=mesh, in_specs=(spec, spec, spec, spec), out_specs=spec, check_vma=False
    )(q, k, v, key_valid)
