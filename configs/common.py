"""Shared config pieces: the U-Net and diffusion settings every stage config starts from.

Stage configs (`configs/<stage>.py`, `get_config(variant)`) copy these and override what differs.
Size variants: `tiny` (tests and this 2-core CPU), `paper` (the published scale).
"""

import ml_collections

VARIANTS = ("tiny", "paper")


def check_variant(variant: str) -> str:
    variant = variant or "tiny"
    if variant not in VARIANTS:
        raise ValueError(f"Unknown size variant '{variant}'; choose one of {VARIANTS}.")
    return variant


def unet_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    """Keys are exactly `mav_jax.nn.UNetConfig`'s fields (checked by UNetConfig.from_dict)."""
    variant = check_variant(variant)
    cfg = ml_collections.ConfigDict()
    cfg.in_channels = 3
    cfg.out_channels = 3
    cfg.extra_in_channels = 0
    cfg.temporal = True
    cfg.temporal_kernel_size = 3
    cfg.timestep_conditioning = True
    cfg.fps_conditioning = True
    cfg.noise_aug_conditioning = False
    cfg.num_context_tokens = 4
    cfg.null_embedding = "learned"
    cfg.remat = "none"  # What backward keeps of each block: none, full, save_dots, offload.
    cfg.scan_blocks = False  # Run each row of identical blocks as one lax.scan.
    cfg.attention_impl = "auto"  # Attention kernel: auto, xla, splash (TPU) or cudnn (GPU).
    cfg.splash_min_tokens = 128  # With auto on TPU: splash for attention over this many tokens up.
    if variant == "tiny":
        cfg.base_channels = 32
        cfg.channel_mults = (1, 2)
        cfg.num_res_blocks = 1
        cfg.attention_levels = (1,)
        cfg.num_heads = 2
        cfg.dropout = 0.0
        cfg.embedding_dim = 64
        cfg.dtype = "float32"
    else:  # paper: unCLIP's 64x64 decoder scale.
        cfg.base_channels = 320
        cfg.channel_mults = (1, 2, 3, 4)
        cfg.num_res_blocks = 3
        cfg.attention_levels = (1, 2, 3)
        cfg.num_heads = 8
        cfg.dropout = 0.1
        cfg.embedding_dim = 768
        cfg.dtype = "bfloat16"
        cfg.remat = "full"
        cfg.scan_blocks = True
    return cfg


def diffusion_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.schedule = "cosine"  # Noise schedule: "cosine" or "linear".
    cfg.num_timesteps = 1000
    cfg.prediction = "v"  # What the network predicts: "eps", "v" or "x0".
    cfg.min_snr_gamma = 0.0  # Min-SNR-gamma loss weighting's gamma, e.g. 5 (0: off).
    cfg.condition_drop_rate = 0.1  # Rate the conditioning is dropped in training (for guidance).
    cfg.sampler = "ddim"  # Sampler: "ddim" or "ddpm".
    cfg.sampling_steps = 50
    cfg.guidance_scale = 3.0
    return cfg


def mesh_config(
    data: int = -1, fsdp: int = 1, context: int = 1, tensor: int = 1, num_slices: int = 1
) -> ml_collections.ConfigDict:
    """Mesh axis sizes; -1 takes the devices the other axes leave (on every host together).
    `context` splits each video's frames (it must divide them); with num_slices > 1 the data
    axis spans the TPU slices (over DCN) and the others stay inside one."""
    return ml_collections.ConfigDict(
        {"data": data, "fsdp": fsdp, "context": context, "tensor": tensor, "num_slices": num_slices}
    )


def train_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    """Loop, optimiser, EMA, checkpoint and logging settings shared by every stage."""
    variant = check_variant(variant)
    tiny = variant == "tiny"
    cfg = ml_collections.ConfigDict()
    cfg.num_steps = 200 if tiny else 300_000
    cfg.global_batch_size = 16 if tiny else 1024  # Batch over all hosts, split over data x fsdp.
    cfg.grad_accum_steps = 1  # Micro-batches per step (the batch is split, gradients summed).
    cfg.learning_rate = 2e-4 if tiny else 1e-4
    cfg.warmup_steps = 20 if tiny else 10_000
    cfg.weight_decay = 0.0
    cfg.clip_norm = 1.0
    cfg.ema_decay = 0.99 if tiny else 0.9999
    # TPU compiler flags for the train step, name=value,... (ignored on other backends).
    cfg.tpu_compiler_options = "xla_tpu_scoped_vmem_limit_kib=4096"
    cfg.temporal_only = False  # Video phase: train only temporal layers (+ fps embedding).
    cfg.log_every = 10 if tiny else 100
    cfg.checkpoint_every = 100 if tiny else 5000
    cfg.keep_checkpoints = 3
    cfg.sample_every = 0 if tiny else 20_000  # Steps between sample videos (0: at the end only).
    cfg.num_samples = 4  # Sample videos written at sample_every and at the end (0: none).
    cfg.sample_steps = 20 if tiny else 100
    return cfg


def evals_config(variant: str = "tiny", kind: str = "heldout_loss") -> ml_collections.ConfigDict:
    """`config.evals`: label -> evaluator settings (mav_jax.train.evaluators). The paper variant
    evaluates every 5000 steps and at the end; tiny runs (tests, CPU) evaluate nothing unless a
    config adds an entry, e.g. `config.evals.heldout = {"type": "heldout_loss"}` (at the end)."""
    cfg = ml_collections.ConfigDict()
    if check_variant(variant) == "paper":
        if kind == "retrieval":
            cfg.retrieval = {"type": "retrieval", "every": 5000, "num_examples": 1024}
        else:  # the U-Net stages and the prior
            cfg.heldout_loss = {"type": "heldout_loss", "every": 5000, "num_examples": 256}
    return cfg
