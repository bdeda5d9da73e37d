"""python -m mav_jax.export --workdir=TRAIN_DIR --output=OUT

Writes an inference checkpoint (EMA parameters + stage config, no optimiser state) from the newest
readable checkpoint of a training run. It restores onto any mesh with
`mav_jax.train.weights.load_inference(OUT, mesh)`.
"""

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", None, "The training run's workdir.")
_OUTPUT = flags.DEFINE_string("output", None, "Directory to write the export to (local or gs://).")
flags.mark_flags_as_required(["workdir", "output"])


def main(argv) -> None:
    del argv
    from mav_jax import cli_logging
    from mav_jax.train.weights import export_inference

    cli_logging.setup()
    try:
        step = export_inference(_WORKDIR.value, _OUTPUT.value)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(str(error)) from None
    logging.info("Exported step %d of %s to %s", step, _WORKDIR.value, _OUTPUT.value)


def cli() -> None:
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    cli()
