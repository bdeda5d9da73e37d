"""TPU compiler options for the train step, from `config.train.tpu_compiler_options`.

A comma-separated list of `name=value` (libtpu's flags, e.g. `xla_jf_conv_input_fusion=false`),
passed to `Lowered.compile(compiler_options=...)` by the trainer and by `python -m mav_jax.plan
--topology`, so the plan compiles the program the trainer runs. They apply only where the mesh's
devices are TPUs: other backends do not know them. docs/results.md says why the default is what
it is (compile time against bytes moved, measured by the TPU compiler).
"""

from __future__ import annotations

import re

from jax.sharding import Mesh

_NAME = re.compile(r"^xla_[a-z0-9_]+$")


def parse_compiler_options(text: str) -> dict[str, bool | int | float | str]:
    """`"a=true,b=3"` -> `{"a": True, "b": 3}`; ValueError naming a malformed entry."""
    options: dict[str, bool | int | float | str] = {}
    for entry in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, value = (piece.strip() for piece in entry.partition("="))
        if not sep or not _NAME.match(name) or not value:
            raise ValueError(
                f"tpu_compiler_options entry '{entry}' is not name=value with an xla_... name "
                "(e.g. xla_jf_conv_input_fusion=false)"
            )
        options[name] = _value(value)
    return options


def _value(text: str) -> bool | int | float | str:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def step_compiler_options(config, mesh: Mesh) -> dict | None:
    """The compile options for `config`'s train step on `mesh`: None unless its devices are TPUs."""
    text = config.train.get("tpu_compiler_options", "")
    if mesh.devices.flat[0].platform != "tpu":
        return None
    return parse_compiler_options(text) or None
