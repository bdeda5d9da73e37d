"""config.train.tpu_compiler_options: parsed into libtpu's compile options, refused with a clear
message when malformed, and applied only where the mesh's devices are TPUs."""

from __future__ import annotations

import types

import ml_collections
import numpy as np
import pytest

from mav_jax.parallel.compiler_options import parse_compiler_options, step_compiler_options


def test_parse_compiler_options_types():
    assert parse_compiler_options("xla_a=false, xla_b=3,xla_c=0.5,xla_d=auto,") == {
        "xla_a": False,
        "xla_b": 3,
        "xla_c": 0.5,
        "xla_d": "auto",
    }
    assert parse_compiler_options("") == {}


@pytest.mark.parametrize("text", ["xla_a", "conv_fusion=false", "xla_a=", "=true"])
def test_malformed_compiler_options_are_refused(text):
    with pytest.raises(ValueError, match="name=value"):
        parse_compiler_options(text)


def _mesh(platform: str):
    return types.SimpleNamespace(devices=np.array([types.SimpleNamespace(platform=platform)]))


def test_step_compiler_options_only_on_tpu():
    config = ml_collections.ConfigDict(
        {"train": {"tpu_compiler_options": "xla_jf_conv_input_fusion=false"}}
    )
    assert step_compiler_options(config, _mesh("tpu")) == {"xla_jf_conv_input_fusion": False}
    assert step_compiler_options(config, _mesh("cpu")) is None
    assert step_compiler_options(ml_collections.ConfigDict({"train": {}}), _mesh("tpu")) is None
