"""The command-line tools as an installed user meets them: console scripts on PATH, and stage
configs named without a path, from any directory."""

import importlib.metadata
import importlib.util
import os
import pathlib
import shutil
import subprocess

from trainer_helpers import subprocess_env

from mav_jax.configs import DIRECTORY, NAMES, config_path, resolve_config_args

SCRIPTS = {
    "mav-train": "mav_jax.train.__main__",
    "mav-export": "mav_jax.export",
    "mav-sample": "mav_jax.sample",
    "mav-quickstart": "mav_jax.quickstart",
    "mav-plan": "mav_jax.plan",
    "mav-fvd": "mav_jax.fvd",
    "mav-clipsim": "mav_jax.clipsim",
    "mav-build": "mav_jax.data.build",
}


def test_every_tool_is_an_installed_console_script():
    installed = {
        e.name: e.value
        for e in importlib.metadata.entry_points(group="console_scripts")
        if e.name.startswith("mav-")
    }
    assert installed == {name: f"{module}:cli" for name, module in SCRIPTS.items()}
    for name, module in SCRIPTS.items():
        assert shutil.which(name), f"{name} is not on PATH"
        # Each defines its own absl flags, so they are read here, not imported into one process.
        source = pathlib.Path(importlib.util.find_spec(module).origin).read_text()
        assert "\ndef cli() -> None:" in source, module


def test_config_names_resolve_to_the_installed_config_files():
    assert config_path("keyframes:paper") == os.path.join(DIRECTORY, "keyframes.py") + ":paper"
    assert config_path("sr_low") == os.path.join(DIRECTORY, "sr_low.py")
    assert config_path("configs/keyframes.py:tiny") == "configs/keyframes.py:tiny"  # a real file
    assert config_path("my_stage:tiny") == "my_stage:tiny"  # unknown: absl reports it
    for name in NAMES:
        assert os.path.isfile(config_path(name))
    argv = ["mav-train", "--config", "prior:tiny", "--config.seed=3", "--workdir=w"]
    assert resolve_config_args(argv) == [
        "mav-train",
        "--config",
        os.path.join(DIRECTORY, "prior.py") + ":tiny",
        "--config.seed=3",
        "--workdir=w",
    ]
    assert resolve_config_args(["x", "--config=clip:paper"])[1].endswith("/clip.py:paper")


def test_a_console_script_takes_a_config_by_name_outside_the_repository(tmp_path):
    """From an empty directory, `mav-train --config=keyframes:tiny` reads the installed config and
    runs the trainer's checks: here the dataset is not built, which it says before compiling."""
    result = subprocess.run(
        [
            "mav-train",
            "--config=keyframes:tiny",
            f"--workdir={tmp_path / 'run'}",
            f"--config.data.data_dir={tmp_path / 'no_data'}",
        ],
        cwd=tmp_path,
        env={**subprocess_env(), "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "The training config cannot run" in result.stderr
    assert "dataset 'moving_digits/tiny' is not built" in result.stderr
