"""python -m mav_jax.quickstart --workdir=DIR: the whole tiny cascade, from nothing to videos.

1. Builds the embedded Moving Digits sets (`tiny`, and `tiny64` for SR_h) under DIR/data if needed.
2. Trains every stage of `configs/quickstart.py` in order (clip, prior, keyframes image then
   video, interpolation, sr_low, sr_high) in DIR/runs/<run>, each with its progress bar, and
   exports it to DIR/checkpoints/<stage>, the layout `python -m mav_jax.sample` reads.
3. Samples the cascade for a few prompts into DIR/samples (MP4, GIF, PNG contact sheets).

Interrupted, the same command resumes: finished stages are skipped (their export exists) and the
stage in progress resumes from its newest checkpoint. Seconds per stage go to DIR/timings.json,
with this host's float32 matmul GFLOP/s measured at the start and end (the day's speed).

`--steps=RUN=N` changes one run's training steps, e.g. `--steps=keyframes_video=5000` for keyframes
whose digit moves (configs/quickstart.py); run again with more steps on a finished workdir, that
run trains on from where it stopped, and the runs that start from its export (↑F from D^t; every
later run from CLIP's) train again from the start, their old runs moved to DIR/superseded.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", None, "Where data, runs, exports and samples go.")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data dir (default: WORKDIR/data).")
_SCALE = flags.DEFINE_float("scale", 1.0, "Multiplies every stage's training steps.")
_SAMPLE_STEPS = flags.DEFINE_integer("sample_steps", 50, "Sampler steps per stage for the videos.")
_STEPS = flags.DEFINE_multi_string(
    "steps",
    [],
    "RUN=N: train run RUN (clip, prior, keyframes_image, keyframes_video, "
    "interpolation, sr_low, sr_high) for N steps instead of configs/quickstart.py's; repeatable. "
    "A finished run given more steps trains on from its last checkpoint and is exported again; "
    "the runs initialised from or conditioned on its export train again.",
)
flags.mark_flags_as_required(["workdir"])


def ensure_datasets(data_dir: str) -> None:
    from mav_jax.data.builders import build
    from mav_jax.train.config_checks import dataset_problems

    for config in ("tiny", "tiny64"):
        if dataset_problems(f"moving_digits/{config}", "image_text", data_dir):
            logging.info("Building moving_digits/%s in %s", config, data_dir)
            build("moving_digits", data_dir, config=config)


def parse_run_steps(items: list[str]) -> dict[str, int]:
    """['keyframes_video=5000', ...] -> {'keyframes_video': 5000}; a malformed item is an error."""
    run_steps = {}
    for item in items:
        name, _, count = item.partition("=")
        if not name or not count.strip().isdigit():
            raise app.UsageError(f"--steps takes RUN=N (e.g. keyframes_video=5000), got '{item}'.")
        run_steps[name.strip()] = int(count)
    return run_steps


def export_is_current(export: str, num_steps: int, run: str) -> bool:
    """Whether `export` holds the run trained for `num_steps`: False when it is missing or
    exported at fewer steps (the run trains on); an export of more steps is an error, since
    going on would replace it with a shorter run's."""
    from mav_jax.exports import export_source

    source = export_source(export)
    if source is None:
        return False
    exported = source.get("step")
    if exported is None or exported == num_steps:
        return True
    if exported > num_steps:
        raise app.UsageError(
            f"{export} was trained for {exported} steps, more than the {num_steps} asked; pass "
            f"--steps={run}={exported} (or more), or use a fresh --workdir."
        )
    return False


INPUTS_FILE = "quickstart_inputs.json"  # in a run's directory: the exports it began from


def upstream_exports(config) -> dict[str, str | None]:
    """The exports a run is initialised from (`init_from`) or conditioned on (`clip_from`), each
    with its id (None for an export made before ids were recorded)."""
    from mav_jax.exports import export_source

    paths = [config.get(field) for field in ("init_from", "clip_from")]
    return {path: (export_source(path) or {}).get("id") for path in paths if path}


def recorded_inputs(run_dir: str, export: str) -> dict[str, str | None]:
    """The upstream export ids a run began from: its export's record, else its run directory's
    (a run not finished yet); empty for a run that recorded none (or has not begun)."""
    from mav_jax.exports import export_source

    source = export_source(export)
    if source is not None:
        return source.get("inputs") or {}
    path = os.path.join(run_dir, INPUTS_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise app.UsageError(
            f"{path} is damaged ({error}): delete it to resume the run without checking the "
            f"exports it began from, or move {run_dir} away to train the run again."
        ) from error


def set_aside(workdir: str, name: str, run_dir: str, export: str) -> str:
    """Move a run's directory and export to WORKDIR/superseded/<name>-<n> (nothing is deleted)."""
    import shutil

    n = 1
    while os.path.exists(aside := os.path.join(workdir, "superseded", f"{name}-{n}")):
        n += 1
    os.makedirs(aside)
    for path, kind in ((run_dir, "run"), (export, "export")):
        if os.path.exists(path):
            shutil.move(path, os.path.join(aside, kind))
    return aside


def run_paths(name: str, workdir: str) -> tuple[str, str]:
    """(training directory, export directory) of quickstart run `name`."""
    from mav_jax.configs.quickstart import EXPORTS

    return os.path.join(workdir, "runs", name), os.path.join(workdir, "checkpoints", EXPORTS[name])


def prepare_run(name: str, config, workdir: str) -> dict[str, str | None] | None:
    """The upstream export ids to train run `name` from, or None when its export is current.

    A run begun from an export that has since been replaced (↑F after `--steps=keyframes_video=N`
    trained D^t on, or every run after CLIP's) is set aside and trains again from the start:
    resuming it would keep weights learnt from, or conditioned on, the old export.
    """
    run_dir, export = run_paths(name, workdir)
    current = upstream_exports(config)
    # By export name, not path: the record keeps the paths of the workdir the run began in, and a
    # copied or moved workdir must still see its own exports replaced.
    by_name = lambda exports: {os.path.basename(os.path.normpath(p)): i for p, i in exports.items()}  # noqa: E731
    now = by_name(current)
    replaced = sorted(
        n for n, id_ in by_name(recorded_inputs(run_dir, export)).items() if now.get(n, id_) != id_
    )
    if replaced:
        aside = set_aside(workdir, name, run_dir, export)
        logging.warning(
            "%s began from %s, replaced since: training it again from the start; "
            "the old run is in %s",
            name,
            ", ".join(replaced),
            aside,
        )
    if export_is_current(export, config.train.num_steps, name):
        return None
    return current


def read_timings(path: str) -> dict:
    """timings.json: {"seconds": {stage: s}, "minutes": total, "host_matmul_gflops": [...]}, one
    matmul figure per start and end of a run (a resumed workdir adds to them); an older file of
    bare seconds per stage is read as the seconds."""
    if not os.path.exists(path):
        return {"seconds": {}, "minutes": 0.0, "host_matmul_gflops": []}
    with open(path) as f:
        recorded = json.load(f)
    if "seconds" not in recorded:
        recorded = {"seconds": recorded}
    return {"minutes": 0.0, "host_matmul_gflops": [], **recorded}


def write_timings(path: str, timings: dict) -> None:
    timings["minutes"] = round(sum(timings["seconds"].values()) / 60, 2)
    with open(path, "w") as f:
        json.dump(timings, f, indent=1)


def train_stage(name: str, config, workdir: str, seconds: dict) -> None:
    """Train (or resume) one run, then export it; skipped when its export is current."""
    from mav_jax.train.trainer import train_and_evaluate
    from mav_jax.train.weights import export_inference

    inputs = prepare_run(name, config, workdir)
    if inputs is None:
        logging.info("%s: done (its export is current)", name)
        return
    run_dir, export = run_paths(name, workdir)
    began = time.perf_counter()
    # A resumed run adds to the time its earlier part took; a run started afresh replaces it.
    resumed = os.path.exists(run_dir)
    spent = seconds.get(name, 0.0) if resumed else 0.0
    if not resumed:
        os.makedirs(run_dir)
        with open(os.path.join(run_dir, INPUTS_FILE), "w") as f:
            json.dump(inputs, f, indent=1)
    logging.info("%s: training %d steps in %s", name, config.train.num_steps, run_dir)
    train_and_evaluate(config, run_dir)
    export_inference(run_dir, export, inputs=inputs)
    seconds[name] = spent + time.perf_counter() - began


def main(argv) -> None:
    del argv
    from mav_jax import cli_logging
    from mav_jax.cascade import Cascade, SamplingOptions
    from mav_jax.configs import quickstart
    from mav_jax.data.video_io import write_outputs
    from mav_jax.parallel import make_mesh
    from mav_jax.parallel.host_devices import use_host_cores
    from mav_jax.stages import to_uint8
    from mav_jax.train.config_checks import batches_split_over_devices
    from mav_jax.train.model_flops import host_matmul_gflops

    cli_logging.setup()
    workdir = os.path.abspath(_WORKDIR.value)
    data_dir = _DATA_DIR.value or os.path.join(workdir, "data")
    try:
        runs = quickstart.stages(data_dir, workdir, _SCALE.value, parse_run_steps(_STEPS.value))
    except ValueError as error:  # an unknown run name or a step count below 1
        raise app.UsageError(str(error)) from error
    use_host_cores([b for _, config in runs for b in batches_split_over_devices(config) or []])
    os.makedirs(workdir, exist_ok=True)
    timings_path = os.path.join(workdir, "timings.json")
    timings = read_timings(timings_path)
    # The host's speed today, beside the times: a day when this machine is slower shows here.
    timings["host_matmul_gflops"].append(round(host_matmul_gflops(), 1))
    began = time.perf_counter()
    ensure_datasets(data_dir)
    seconds = timings["seconds"]
    seconds["datasets"] = seconds.get("datasets", 0.0) + time.perf_counter() - began
    for name, config in runs:
        train_stage(name, config, workdir, seconds)
        write_timings(timings_path, timings)

    began = time.perf_counter()
    cascade = Cascade.load(os.path.join(workdir, "checkpoints"), make_mesh({"data": -1}))
    options = SamplingOptions(seed=0, steps=_SAMPLE_STEPS.value)
    outputs = cascade.text_to_video(list(quickstart.PROMPTS), options)
    samples = os.path.join(workdir, "samples")
    os.makedirs(samples, exist_ok=True)
    captions = []
    for stage_name, videos in outputs.items():
        rate = cascade.fps_of(stage_name, options)
        for i, video in enumerate(to_uint8(videos)):
            prefix = os.path.join(samples, f"prompt_{i}.{stage_name}")
            write_outputs(prefix, video, rate)
            if stage_name == "sr_high":
                captions.append(
                    {"video": os.path.basename(prefix) + ".mp4", "caption": quickstart.PROMPTS[i]}
                )
    with open(os.path.join(samples, "captions.jsonl"), "w") as f:
        f.writelines(json.dumps(c) + "\n" for c in captions)
    seconds["sampling"] = time.perf_counter() - began
    timings["host_matmul_gflops"].append(round(host_matmul_gflops(), 1))
    write_timings(timings_path, timings)
    print(
        f"Quickstart done in {timings['minutes']:.1f} min of work (host matmul "
        f"{' / '.join(map(str, timings['host_matmul_gflops'][-2:]))} GFLOP/s at start / end); "
        f"videos in {samples}, timings in {timings_path}",
        file=sys.stderr,
    )


def cli() -> None:
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    cli()
