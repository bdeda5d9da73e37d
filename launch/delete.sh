#!/usr/bin/env bash
# Delete the slice, or with --queued the queued resource and its slice. Checkpoints, logs and
# exports in the bucket stay; the workers' disks (and ~/mav_jax_train.log) go.
#
# Usage: launch/delete.sh --project=P --zone=Z --tpu_name=N [--queued] [--yes] [--dry-run]
#
#   --queued  MAV_QUEUED=1: the slice was created with create.sh --queued
#   --yes     do not ask for confirmation
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "queued yes" "$@"
setup_tpu
quiet=()
is_true "$YES" && quiet=(--quiet)
if is_true "$QUEUED"; then
  run gcloud compute tpus queued-resources delete "$TPU_NAME" "${LOCATION[@]}" --force "${quiet[@]}"
else
  run gcloud compute tpus tpu-vm delete "$TPU_NAME" "${LOCATION[@]}" "${quiet[@]}"
fi
