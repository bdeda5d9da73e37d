#!/usr/bin/env bash
# Show the end of the training log (~/mav_jax_train.log) of one worker or of all of them.
#
# Usage: launch/logs.sh --project=P --zone=Z --tpu_name=N [--worker=0|all|K] [--tail=100] [--follow]
#            [--dry-run]
#
#   --worker   MAV_WORKER: 0 (default; it writes the metrics and samples), K, or all
#   --tail     MAV_TAIL: how many lines (default 100)
#   --follow   keep printing new lines (Ctrl-C stops watching; training goes on)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "worker tail follow" "$@"
setup_tpu
[[ $WORKER =~ ^(all|[0-9]+(,[0-9]+)*)$ ]] || die "--worker must be all, K or K,L,...: $WORKER"
[[ $TAIL =~ ^[0-9]+$ ]] || die "--tail must be a number of lines: $TAIL"
options=""
is_true "$FOLLOW" && options=" -F"
tpu_ssh "$WORKER" "tail -n $TAIL$options $REMOTE_LOG"
