#!/usr/bin/env bash
# Stop mav_jax.train on every worker with SIGTERM: the trainer saves a checkpoint, then exits.
# Start it again (train.sh, same flags) to resume.
#
# Usage: launch/stop.sh --project=P --zone=Z --tpu_name=N [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "" "$@"
setup_tpu
tpu_ssh all "if pkill -TERM -f \"$TRAIN_PATTERN\"; then echo 'sent SIGTERM to mav_jax.train'; \
else echo 'mav_jax.train was not running'; fi"
