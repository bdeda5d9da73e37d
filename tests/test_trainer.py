"""The trainer end to end on the keyframe stage: image phase -> video phase (temporal only) ->
export -> restore on another mesh; bad configs; resume after SIGTERM and SIGKILL; two processes."""

import json
import pathlib
import signal
import socket
import subprocess
import time

import jax
import numpy as np
import pytest
from trainer_helpers import start, tiny_config, train_command

from mav_jax.data.video_io import read_video
from mav_jax.nn import is_temporal_path
from mav_jax.parallel import make_mesh
from mav_jax.state_paths import flat_params
from mav_jax.train.checkpoints import Checkpointer, abstract_like
from mav_jax.train.config_checks import ConfigError
from mav_jax.train.trainer import train_and_evaluate
from mav_jax.train.weights import export_inference, load_inference, load_weights


def _leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def image_run(digits_data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("image")
    state = train_and_evaluate(tiny_config(digits_data_dir), str(workdir))
    return workdir, state


def test_image_phase_trains_checkpoints_logs_and_samples(image_run):
    workdir, state = image_run
    assert int(state.step) == 4
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [2, 4]
    assert list(workdir.glob("events.out.tfevents.*"))
    frames, fps = read_video(str(workdir / "samples" / "step_00000004.mp4"))
    assert frames.shape == (1, 16, 32, 3) and fps == pytest.approx(24.0)  # image phase: 1 frame
    gif, _ = read_video(str(workdir / "samples" / "step_00000004.gif"))
    assert gif.shape == (1, 16, 32, 3)
    assert not any(is_temporal_path(p) for p in flat_params(state.params))


def test_video_phase_starts_from_the_image_weights_and_trains_only_temporal_layers(
    image_run, digits_data_dir, tmp_path
):
    """Also with warped frame noise in its loss and its samples (diffusion/frame_motion.py), so the
    phase correlation and the drift run inside the real step, sharded over 8 devices."""
    image_workdir, image_state = image_run
    warped_noise = {
        "diffusion.training_frame_noise_correlation": 0.5,
        "diffusion.training_noise_follows_motion": True,
        "diffusion.frame_noise_correlation": 0.8,
        "diffusion.frame_noise_drift": 2.0,
    }
    config = tiny_config(
        digits_data_dir,
        phase="video",
        init_from=str(image_workdir),
        **{"train.temporal_only": True},
        **warped_noise,
    )
    state = train_and_evaluate(config, str(tmp_path / "video"))
    image = flat_params(image_state.ema)  # init_from loads the image run's EMA weights
    video = flat_params(state.params)
    assert set(image) < set(video)
    assert all(np.array_equal(image[p][...], video[p][...]) for p in image)
    new = [p for p in video if p not in image]
    assert new and all(is_temporal_path(p) for p in new)
    frames, fps = read_video(str(tmp_path / "video" / "samples" / "step_00000004.mp4"))
    assert frames.shape[0] == 3 and fps == pytest.approx(24.0)  # 3 frames at skip 1

    # Export: EMA + config only, restored onto a mesh of another shape.
    step = export_inference(str(tmp_path / "video"), str(tmp_path / "export"))
    assert step == 4
    exported = json.loads((tmp_path / "export" / "config.json").read_text())
    assert exported["phase"] == "video" and exported["exported_from"]["step"] == 4
    assert len(exported["exported_from"]["id"]) == 32  # what later runs record they began from
    config2, _, params = load_inference(
        str(tmp_path / "export"), make_mesh({"data": 2, "tensor": 4})
    )
    assert config2.stage == "keyframes" and _leaves_equal(params, state.ema)
    leaf = params["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    assert leaf.sharding.mesh.shape["tensor"] == 4


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stage": "decoder"}, "Unknown stage 'decoder'"),
        ({"data.resolution": 17}, "spatial factor 2"),
        ({"train.global_batch_size": 12}, "divisible by data x fsdp = 8"),
        ({"data.dataset": "moving_digits/absent"}, "python -m mav_jax.data.build moving_digits"),
        ({"mesh.fsdp": 3}, "config.mesh"),
        ({"phase": "video", "init_from": "/nonexistent/run"}, "does not exist"),
        ({"phase": "audio"}, "config.phase must be one of"),
        ({"train.tpu_compiler_options": "conv_fusion"}, "tpu_compiler_options entry"),
    ],
)
def test_bad_configs_fail_before_compiling_with_what_to_fix(
    digits_data_dir, tmp_path, overrides, message
):
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(tiny_config(digits_data_dir, **overrides), str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def test_resuming_in_another_model_config_is_refused(image_run, digits_data_dir):
    workdir, _ = image_run
    with pytest.raises(ConfigError, match="original config"):
        train_and_evaluate(tiny_config(digits_data_dir, **{"unet.base_channels": 8}), str(workdir))


def _committed_steps(workdir: pathlib.Path) -> list[int]:
    root = workdir / "checkpoints"
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.exists() else []


def _wait_for_step(process, workdir, step: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not any(s >= step for s in _committed_steps(workdir)):
        assert process.poll() is None, "the training process ended before it was interrupted"
        assert time.time() < deadline, f"no checkpoint at step {step} after {timeout} s"
        time.sleep(0.05)


# Held-out loss at fixed timesteps every 4 steps: on the video split (the unit build's eval split
# has 4 clips, and the loss needs no captions), one example per batch shard.
HELDOUT = {"type": "heldout_loss", "every": 4, "split": "video", "num_examples": 8}


def _config_file(tmp_path, evals: dict = HELDOUT) -> pathlib.Path:
    """A user's own config file: the tiny keyframe config with an evaluator declared."""
    path = tmp_path / "keyframes_with_evals.py"
    path.write_text(
        "from mav_jax.configs import keyframes\n\n\n"
        "def get_config(variant):\n"
        "    config = keyframes.get_config(variant)\n"
        f"    config.evals.heldout = {evals!r}\n"
        "    return config\n"
    )
    return path


def _with_config_file(command: list[str], path: pathlib.Path) -> list[str]:
    """`command` (trainer_helpers.train_command) reading its config from `path`."""
    return [f"--config={path}:tiny" if arg.startswith("--config=") else arg for arg in command]


def test_preempted_and_killed_runs_resume_to_the_uninterrupted_result(
    digits_data_dir, tmp_path, monkeypatch
):
    """Training and its held-out evaluations: the run preempted (SIGTERM) and then killed
    (SIGKILL) ends with the uninterrupted run's weights and evaluation numbers."""
    steps = {
        "train.num_steps": 24,
        "train.checkpoint_every": 4,
        "train.log_every": 4,
        "mesh.data": 8,
        "mesh.fsdp": 1,
        "train.num_samples": 0,
    }
    config = tiny_config(digits_data_dir, **steps)
    config.evals.heldout = HELDOUT
    reference = train_and_evaluate(config, str(tmp_path / "ref"))
    workdir = tmp_path / "run"
    command = _with_config_file(
        train_command(workdir, digits_data_dir, **steps), _config_file(tmp_path)
    )

    preempted = start(command, log_path=tmp_path / "first.log")
    _wait_for_step(preempted, workdir, 4)
    preempted.send_signal(signal.SIGTERM)
    assert preempted.wait(timeout=300) == 0
    stopped_at = _committed_steps(workdir)[-1]
    assert (
        stopped_at < 24 and "run the same command to resume" in (tmp_path / "first.log").read_text()
    )

    killed = start(command, log_path=tmp_path / "second.log")
    _wait_for_step(killed, workdir, stopped_at + 1)  # its first new checkpoint
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert stopped_at < _committed_steps(workdir)[-1] < 24

    subprocess.run(
        command,
        cwd=start.__globals__["ROOT"],
        env=start.__globals__["subprocess_env"](),
        check=True,
        capture_output=True,
        timeout=600,
    )
    ckpt = Checkpointer(str(workdir / "checkpoints"))
    step, resumed, _, _ = ckpt.restore_latest(abstract_like(reference))
    ckpt.close()
    assert step == 24 and int(resumed.step) == 24
    for a, b in zip(
        jax.tree.leaves(resumed.params), jax.tree.leaves(reference.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    # Evaluated at every 4th step, the same numbers however often the run was interrupted.
    expected = json.loads((tmp_path / "ref" / "evals.json").read_text())
    got = json.loads((workdir / "evals.json").read_text())
    assert sorted(map(int, expected)) == [4, 8, 12, 16, 20, 24] and got.keys() == expected.keys()
    for at in expected:
        assert set(expected[at]) == {
            "heldout/t=100",
            "heldout/t=500",
            "heldout/t=900",
            "heldout/mean",
        }
        for name, value in expected[at].items():
            assert got[at][name] == pytest.approx(value, rel=1e-5), (at, name)
    assert expected["4"]["heldout/mean"] != expected["24"]["heldout/mean"]  # it measures training

    # Run again on the finished workdir: nothing is trained and nothing evaluated twice.
    from mav_jax.train.evaluators import HeldoutLoss

    calls = []
    monkeypatch.setattr(HeldoutLoss, "evaluate", lambda self, params, at: calls.append(at) or {})
    train_and_evaluate(config, str(tmp_path / "ref"))
    assert calls == []


def test_the_heldout_loss_is_the_stage_loss_on_the_fixed_batch_at_each_timestep(
    image_run, digits_data_dir
):
    """What the evaluator reports is the stage's own loss on the held-out batch at each fixed
    timestep, with the evaluator's fixed key (computed here by a function of this test's); and a
    second evaluation of the same weights gives the same numbers."""
    import jax.numpy as jnp
    from flax import nnx

    from mav_jax.stages import stage_from_config
    from mav_jax.train.evaluators import EvalContext, HeldoutLoss
    from mav_jax.train.weights import abstract_params

    _, state = image_run
    config = tiny_config(digits_data_dir)
    stage = stage_from_config(config)
    mesh = make_mesh(dict(config.mesh))
    graphdef, _ = abstract_params(stage, mesh)
    context = EvalContext(
        stage, graphdef, mesh, config.data.dataset, config.data.data_dir, 0, stage.conditioner(mesh)
    )
    evaluator = HeldoutLoss("heldout", {**HELDOUT, "timestep_fractions": (0.0, 0.3)}, context)
    assert evaluator.timesteps == [0, 300]
    first = evaluator.evaluate(state.ema, 4)
    assert first == evaluator.evaluate(state.ema, 4)

    @jax.jit
    def direct(params, batch, t):
        loss, aux = stage.loss(nnx.merge(graphdef, params), batch, evaluator.key, timesteps=t)
        return loss, aux["timesteps"]

    losses = []
    for t in (0, 300):
        loss, used = direct(state.ema, evaluator.batch, jnp.full((8,), t))
        assert np.all(np.asarray(used) == t)
        losses.append(float(loss))
        assert first[f"t={t}"] == pytest.approx(float(loss), rel=1e-5)
    assert first["mean"] == pytest.approx(np.mean(losses), rel=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_and_the_checkpoint_restores_in_one_on_another_mesh(
    digits_data_dir, tmp_path
):
    workdir = tmp_path / "multi"
    address = f"--coordinator_address=127.0.0.1:{_free_port()}"
    # With an evaluator at the end: its held-out batch spans both processes' devices, and whether
    # it is due is process 0's answer (an evaluation is a collective).
    evals = {**HELDOUT, "every": 0}
    config_file = _config_file(tmp_path, evals)
    processes = [
        start(
            _with_config_file(
                train_command(
                    workdir, digits_data_dir, address, "--num_processes=2", f"--process_id={i}"
                ),
                config_file,
            ),
            devices=4,
            log_path=tmp_path / f"p{i}.log",
        )
        for i in range(2)
    ]
    for i, process in enumerate(processes):
        assert process.wait(timeout=600) == 0, (tmp_path / f"p{i}.log").read_text()[-3000:]
    assert _committed_steps(workdir) == [2, 4]
    assert len(list(workdir.glob("events.out.tfevents.*"))) == 1  # only process 0 writes logs
    heldout = json.loads((workdir / "evals.json").read_text())
    assert list(heldout) == ["4"] and np.isfinite(heldout["4"]["heldout/mean"])
    assert (workdir / "samples" / "step_00000004.gif").exists()
    config, _, params = load_weights(str(workdir), make_mesh({"fsdp": 8}))
    assert config.stage == "keyframes"
    leaf = params["down"][0]["res"]["conv1"]["spatial_conv"]["kernel"][...]
    assert leaf.sharding.mesh.shape["fsdp"] == 8 and np.all(np.isfinite(leaf))
