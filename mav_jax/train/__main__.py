"""python -m mav_jax.train --config=configs/<stage>.py:<variant> --workdir=DIR [--config.x=y ...]

Trains one cascade stage; run the same command again to resume. On several hosts, start it on
every host at once (Cloud TPU: `gcloud ... ssh --worker=all`); on CPU clusters also pass
--coordinator_address, --num_processes and --process_id.
"""

import logging as py_logging

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config file and variant.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard logs and samples.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", "",
                                   "host:port of process 0, for multi-process jobs off Cloud TPU.")  # fmt: skip
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Processes in the job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index.")
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_library_info(record: py_logging.LogRecord) -> bool:
    """Keep mav_jax's INFO lines; from libraries (Orbax logs every save) only warnings."""
    return record.levelno >= py_logging.WARNING or f"{__package__.split('.')[0]}" in record.pathname


def main(argv) -> None:
    del argv
    from mav_jax.parallel.distributed import initialize

    initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    import jax

    jax.config.update("jax_threefry_partitionable", True)
    from mav_jax.train.config_checks import ConfigError
    from mav_jax.train.trainer import train_and_evaluate

    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(_quiet_library_info)
    try:
        train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except ConfigError as error:
        raise app.UsageError(str(error)) from None


if __name__ == "__main__":
    app.run(main)
