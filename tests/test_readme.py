"""README.md is the front door: short, with its three commands, and every command it shows runs as
written (each module, script and flag it names exists)."""

from __future__ import annotations

import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 250
THREE_COMMANDS = (
    "pip install -e '.[test]'",
    "python -m mav_jax.quickstart --workdir=runs/quickstart",
    'python -m pytest -q -n 2 --dist loadfile -m "not slow" tests',
)
NOT_OURS = ("pip", "export", "tensorboard", "gcloud", "python3", ".", "source")


def readme_commands(text: str) -> list[list[str]]:
    """The commands of README's bash blocks as argument lists: continuation lines joined, comments
    dropped, `a && b` split into `a` and `b`."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words:
                    commands.append(words)
    return commands


def named_flags(words: list[str]) -> set[str]:
    """--name=value and --name -> name; --config.FIELD overrides -> config. (--help is what the
    check itself runs.)"""
    names = {w[2:].split("=")[0] for w in words if w.startswith("--") and w != "--help"}
    return {"config" if n.startswith("config.") else n for n in names}


def what_it_runs(words: list[str]) -> tuple[str, list[str]] | None:
    """(what to check, the command that prints its flags) for commands of this repository."""
    if words[0] == "python" and words[1] == "-m" and words[2].startswith("mav_jax"):
        return words[2], [sys.executable, "-m", words[2], "--helpfull"]
    if words[0] == "python" and words[1].startswith("bench/"):
        return words[1], [sys.executable, words[1], "--help"]
    if words[0].startswith("launch/"):
        return words[0], ["bash", words[0], "--help"]
    return None


def test_readme_is_a_front_door_of_at_most_250_lines_with_its_three_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"README.md has {len(text.splitlines())} lines"
    commands = [
        " ".join(shlex.quote(w) if " " in w else w for w in c) for c in readme_commands(text)
    ]
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", text, flags=re.S))
    for command in THREE_COMMANDS:
        assert command in blocks, f"README lost the command `{command}`"
    assert commands, "README has no bash blocks"


def test_the_parser_reads_continuations_comments_and_chains():
    text = "```bash\na -m x --f=1 \\\n    --g  # note\nb --h && c --i\n```\n"
    assert readme_commands(text) == [["a", "-m", "x", "--f=1", "--g"], ["b", "--h"], ["c", "--i"]]
    assert named_flags(["x", "--config.unet.width=3", "--a=1", "--nob"]) == {"config", "a", "nob"}


def _help_texts(targets: dict[str, list[str]]) -> dict[str, str]:
    """Every target's --help output, the processes run side by side."""
    running = {
        name: subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, cmd in targets.items()
    }
    return {name: p.communicate(timeout=300)[0].decode() for name, p in running.items()}


def test_every_module_script_and_flag_in_readme_commands_exists():
    wanted: dict[str, set[str]] = {}
    help_commands: dict[str, list[str]] = {}
    for words in readme_commands(README.read_text()):
        if words[0] in NOT_OURS or words[:3] == ["python", "-m", "pytest"]:
            continue
        found = what_it_runs(words)
        assert found is not None, f"README runs `{' '.join(words)}`, which the test cannot check"
        target, help_command = found
        path = ROOT / target
        if "/" in target:
            assert path.exists(), f"README names {target}, which does not exist"
        help_commands[target] = help_command
        wanted.setdefault(target, set()).update(named_flags(words))
    texts = _help_texts(help_commands)
    for target, names in wanted.items():
        text = texts[target]
        assert "Traceback" not in text and "No module named" not in text, (target, text[-2000:])
        for name in sorted(names):
            bare = name[2:] if name.startswith("no") and f"[no]{name[2:]}" in text else name
            listed = re.search(rf"--(\[no\])?{re.escape(bare)}\b", text)
            assert listed, f"README gives {target} --{name}, which its --help does not list"


@pytest.mark.parametrize("bad", ["python -m mav_jax.train --no_such_flag=1"])
def test_a_flag_that_does_not_exist_is_caught(bad):
    """The check above fails for a flag no module defines (so it is not vacuous)."""
    words = shlex.split(bad)
    target, help_command = what_it_runs(words)
    text = _help_texts({target: help_command})[target]
    assert "--workdir" in text
    assert not re.search(r"--(\[no\])?no_such_flag\b", text)
