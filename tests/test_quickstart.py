"""The quickstart's command line: per-run step overrides, and when a finished run trains on."""

import json

import pytest
from absl import app

from configs import quickstart
from mav_jax.quickstart import export_is_current, parse_run_steps


def test_step_overrides_set_the_named_runs_steps_and_intervals(tmp_path):
    default = dict(quickstart.stages(str(tmp_path / "data"), str(tmp_path)))
    runs = dict(quickstart.stages(str(tmp_path / "data"), str(tmp_path),
                                  run_steps=parse_run_steps(["keyframes_video=5000"])))  # fmt: skip
    train = runs["keyframes_video"].train
    assert (train.num_steps, train.warmup_steps, train.checkpoint_every, train.log_every) == (
        5000, 50, 1250, 250)  # fmt: skip
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
    with pytest.raises(app.UsageError, match="150 steps, more than the 100 asked; pass "
                                             "--steps=keyframes_video=150"):
        export_is_current(str(export), 100, "keyframes_video")
