"""python -m mav_jax.train --config=configs/<stage>.py:<variant> --workdir=DIR [--config.x=y ...]

Trains one cascade stage; run the same command again to resume. On several hosts, start it on
every host at once (Cloud TPU: `gcloud ... ssh --worker=all`); on CPU clusters also pass
--coordinator_address, --num_processes and --process_id.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config file and variant.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard logs and samples.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", "", "host:port of process 0, for multi-process jobs off Cloud TPU."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Processes in the job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
    del argv
    from mav_jax.parallel.distributed import initialize

    initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    import jax

    from mav_jax.parallel.host_devices import use_host_cores
    from mav_jax.train.config_checks import batches_split_over_devices

    batches = batches_split_over_devices(_CONFIG.value)
    if batches and _NUM_PROCESSES.value == 1:  # a CPU run uses every core (parallel.host_devices)
        use_host_cores(batches)

    jax.config.update("jax_threefry_partitionable", True)
    from mav_jax import cli_logging
    from mav_jax.train.config_checks import ConfigError
    from mav_jax.train.trainer import train_and_evaluate

    cli_logging.setup()
    try:
        train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except ConfigError as error:
        raise app.UsageError(str(error)) from None


def cli() -> None:
    """Console-script entry point; `--config` takes a file path or a stage name (keyframes:paper)."""
    from mav_jax.configs import resolve_config_args

    app.run(main, argv=resolve_config_args(sys.argv))


if __name__ == "__main__":
    cli()
