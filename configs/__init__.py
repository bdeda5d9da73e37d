"""Stage configs, one `ml_collections` file per stage: `get_config(variant)`, variant `tiny` (tests
and CPU) or `paper` (the published scale); `common.py` holds the shared pieces.

The directory sits at the top of the repository and installs as `mav_jax.configs`, so every
command takes a config by file path (`--config=configs/keyframes.py:paper`) or, from any
directory once installed, by name (`--config=keyframes:paper`; `resolve_config_args`).
"""

from __future__ import annotations

import os

DIRECTORY = os.path.dirname(os.path.abspath(__file__))
NAMES = (
    "clip",
    "prior",
    "keyframes",
    "interpolation",
    "sr_low",
    "sr_high",
    "super_resolution",
    "quickstart",
)


def config_path(spec: str) -> str:
    """'keyframes:paper' -> '<installed configs>/keyframes.py:paper'. A spec naming an existing
    file, or anything but a known config name, comes back unchanged (absl then reports it)."""
    name, colon, variant = spec.partition(":")
    if os.path.exists(name) or name.removesuffix(".py") not in NAMES:
        return spec
    return os.path.join(DIRECTORY, name.removesuffix(".py") + ".py") + colon + variant


def resolve_config_args(argv: list[str], flag: str = "config") -> list[str]:
    """`argv` with the value of `--config=SPEC` (or `--config SPEC`) resolved by `config_path`;
    every other argument, `--config.x=y` overrides included, unchanged."""
    resolved, take_next = [], False
    for arg in argv:
        if take_next:
            resolved.append(config_path(arg))
            take_next = False
        elif arg.startswith(f"--{flag}="):
            resolved.append(f"--{flag}=" + config_path(arg.split("=", 1)[1]))
        else:
            take_next = arg == f"--{flag}"
            resolved.append(arg)
    return resolved
