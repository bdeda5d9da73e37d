"""Console logging for the CLIs: mav_jax's INFO lines, only warnings from libraries (Orbax logs
every step of every save at INFO)."""

from __future__ import annotations

import logging

from absl import logging as absl_logging


def _quiet_library_info(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or "mav_jax" in record.pathname


def setup() -> None:
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logging.get_absl_handler().addFilter(_quiet_library_info)
