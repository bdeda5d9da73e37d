#!/usr/bin/env bash
# Start `python -m mav_jax.train` on every worker of the slice at once, detached, each worker
# appending to ~/mav_jax_train.log. On a multi-host slice the processes find each other
# (jax.distributed.initialize() inside mav_jax). Run the same command again to resume from the
# newest checkpoint in the workdir, e.g. after a preemption (on a re-created slice).
#
# Usage: launch/train.sh --project=P --zone=Z --tpu_name=N --config=configs/STAGE.py:VARIANT
#            (--bucket=B --run=NAME | --workdir=gs://...) [--data_dir=gs://...]
#            [--config.FIELD=VALUE ...] [--dry-run] [-- MORE_TRAIN_FLAGS]
#
#   --config    MAV_CONFIG: stage config and variant, e.g. configs/keyframes.py:paper
#   --workdir   MAV_WORKDIR: checkpoints, TensorBoard logs, samples; default gs://BUCKET/runs/RUN
#   --bucket    MAV_BUCKET: the GCS bucket (gs:// optional); --run MAV_RUN: the run's name
#   --data_dir  MAV_DATA_DIR: the TFDS data dir (exported as TFDS_DATA_DIR);
#               default gs://BUCKET/tensorflow_datasets
#   --config.FIELD=VALUE  passed on to mav_jax.train, as are the arguments after --
#   --dry-run   print the gcloud command instead of running it
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "config bucket run workdir data_dir overrides" "$@"
setup_tpu
require config
resolve_workdir
resolve_data_dir
[[ -f $REPO_DIR/${CONFIG%%:*} ]] || note "warning: ${CONFIG%%:*} is not in this checkout"

train=$(quote_args python -m mav_jax.train --config="$CONFIG" --workdir="$WORKDIR" \
  "${OVERRIDES[@]}" "${EXTRA_ARGS[@]}")
# Refuse a second copy; append a date line and the job's output to the log; detach (setsid) so
# that the job outlives the ssh session.
running="echo 'mav_jax.train is already running (stop.sh stops it)' >&2; exit 1"
tpu_ssh all "$REMOTE_ENV; export TFDS_DATA_DIR=$(quote "$DATA_DIR"); \
if pgrep -f \"$TRAIN_PATTERN\" >/dev/null; then $running; fi; date >> $REMOTE_LOG; \
setsid nohup $train >> $REMOTE_LOG 2>&1 < /dev/null & \
echo 'mav_jax.train started, log: $REMOTE_LOG'"
