"""The quickstart's command line: per-run step overrides, and when a finished run trains on."""

import json

import ml_collections
import pytest
from absl import app

from mav_jax.configs import quickstart
from mav_jax.quickstart import INPUTS_FILE, export_is_current, parse_run_steps, prepare_run


def test_step_overrides_set_the_named_runs_steps_and_intervals(tmp_path):
    default = dict(quickstart.stages(str(tmp_path / "data"), str(tmp_path)))
    runs = dict(
        quickstart.stages(
            str(tmp_path / "data"),
            str(tmp_path),
            run_steps=parse_run_steps(["keyframes_video=5000"]),
        )
    )
    train = runs["keyframes_video"].train
    assert (train.num_steps, train.warmup_steps, train.checkpoint_every, train.log_every) == (
        5000,
        50,
        1250,
        250,
    )
    assert train.global_batch_size == default["keyframes_video"].train.global_batch_size
    for name in runs.keys() - {"keyframes_video"}:
        assert runs[name].train.num_steps == default[name].train.num_steps
    with pytest.raises(ValueError, match="No quickstart run is named keyframes; the runs are clip"):
        quickstart.stages(str(tmp_path), str(tmp_path), run_steps={"keyframes": 10})
    with pytest.raises(ValueError, match="at least 1 step"):
        quickstart.stages(str(tmp_path), str(tmp_path), run_steps={"prior": 0})
    for bad in ("keyframes_video", "keyframes_video=", "=10", "prior=ten", "prior=-3"):
        with pytest.raises(app.UsageError, match="RUN=N"):
            parse_run_steps([bad])


def test_an_export_of_fewer_steps_trains_on_and_one_of_more_is_refused(tmp_path):
    export = tmp_path / "keyframes"
    assert not export_is_current(str(export), 150, "keyframes_video")  # not trained yet
    export.mkdir()
    (export / "config.json").write_text(json.dumps({"exported_from": {"step": 150}}))
    assert export_is_current(str(export), 150, "keyframes_video")
    assert not export_is_current(str(export), 5000, "keyframes_video")  # asked for more: train on
    with pytest.raises(
        app.UsageError, match="150 steps, more than the 100 asked; pass --steps=keyframes_video=150"
    ):
        export_is_current(str(export), 100, "keyframes_video")


def _export(path, step, id_, inputs=None):
    path.mkdir(parents=True, exist_ok=True)
    source = {"step": step, "id": id_, **({"inputs": inputs} if inputs else {})}
    (path / "config.json").write_text(json.dumps({"exported_from": source}))


def test_a_run_begun_from_a_replaced_export_is_set_aside_and_trains_again(tmp_path):
    exports = tmp_path / "checkpoints"
    keyframes, clip = str(exports / "keyframes"), str(exports / "clip")
    _export(exports / "keyframes", 150, "dt-a")
    _export(exports / "clip", 1500, "clip-a")
    config = ml_collections.ConfigDict(
        {"init_from": keyframes, "clip_from": clip, "train": {"num_steps": 400}}
    )
    begun_from = {keyframes: "dt-a", clip: "clip-a"}
    assert prepare_run("interpolation", config, str(tmp_path)) == begun_from  # not trained yet

    run_dir = tmp_path / "runs" / "interpolation"
    (run_dir / "checkpoints").mkdir(parents=True)
    _export(exports / "interpolation", 400, "f-a", begun_from)
    assert prepare_run("interpolation", config, str(tmp_path)) is None  # finished and current

    # D^t trained on (--steps): same path, new export. ↑F must start again, not keep its weights.
    _export(exports / "keyframes", 5000, "dt-b")
    assert prepare_run("interpolation", config, str(tmp_path)) == {
        keyframes: "dt-b",
        clip: "clip-a",
    }
    aside = tmp_path / "superseded" / "interpolation-1"
    assert not run_dir.exists() and not (exports / "interpolation").exists()
    assert (aside / "run" / "checkpoints").is_dir()
    assert (
        json.loads((aside / "export" / "config.json").read_text())["exported_from"]["id"] == "f-a"
    )

    # A run interrupted before its export, begun from an export replaced since (even by one of
    # the same step count), is set aside beside the first.
    run_dir.mkdir(parents=True)
    (run_dir / INPUTS_FILE).write_text(json.dumps({keyframes: "dt-b", clip: "clip-a"}))
    _export(exports / "clip", 1500, "clip-b")
    assert prepare_run("interpolation", config, str(tmp_path)) == {
        keyframes: "dt-b",
        clip: "clip-b",
    }
    assert (tmp_path / "superseded" / "interpolation-2" / "run" / INPUTS_FILE).exists()
    assert not run_dir.exists()

    # A workdir copied elsewhere records its first home's paths; D^t trained on in the copy
    # still sets the copy's ↑F aside.
    copy = tmp_path / "copy"
    copy_exports = copy / "checkpoints"
    _export(copy_exports / "keyframes", 5000, "dt-c")
    _export(copy_exports / "clip", 1500, "clip-b")
    _export(copy_exports / "interpolation", 400, "f-b", {keyframes: "dt-b", clip: "clip-b"})
    (copy / "runs" / "interpolation").mkdir(parents=True)
    copied = ml_collections.ConfigDict(
        {
            "init_from": str(copy_exports / "keyframes"),
            "clip_from": str(copy_exports / "clip"),
            "train": {"num_steps": 400},
        }
    )
    assert prepare_run("interpolation", copied, str(copy)) == {
        str(copy_exports / "keyframes"): "dt-c",
        str(copy_exports / "clip"): "clip-b",
    }
    assert (copy / "superseded" / "interpolation-1" / "export").is_dir()

    # A damaged record of what a run began from is a clear error, and nothing is moved.
    run_dir.mkdir(parents=True)
    (run_dir / INPUTS_FILE).write_text('{"truncated')
    with pytest.raises(app.UsageError, match=f"{INPUTS_FILE} is damaged .*delete it"):
        prepare_run("interpolation", config, str(tmp_path))
    assert (run_dir / INPUTS_FILE).exists()


def test_timings_keep_seconds_per_stage_the_total_and_the_hosts_matmul_speed(tmp_path):
    from mav_jax import quickstart as cli

    path = str(tmp_path / "timings.json")
    timings = cli.read_timings(path)  # none yet
    assert timings == {"seconds": {}, "minutes": 0.0, "host_matmul_gflops": []}
    timings["seconds"].update(clip=90.0, prior=30.0)
    timings["host_matmul_gflops"].append(268.5)
    cli.write_timings(path, timings)
    again = cli.read_timings(path)
    assert again == {
        "seconds": {"clip": 90.0, "prior": 30.0},
        "minutes": 2.0,
        "host_matmul_gflops": [268.5],
    }
    # A workdir from before the matmul figures: its file is bare seconds per stage, still read.
    with open(path, "w") as f:
        json.dump({"clip": 60.0}, f)
    assert cli.read_timings(path)["seconds"] == {"clip": 60.0}
