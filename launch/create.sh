#!/usr/bin/env bash
# Create a Cloud TPU VM slice, or a queued resource that creates it when capacity is free.
#
# Usage: launch/create.sh --project=P --zone=Z --tpu_name=N --accelerator=TYPE
#            [--queued [--wait]] [--runtime_version=V] [--spot | --preemptible | --reserved]
#            [--dry-run] [-- GCLOUD_ARGS]
#
#   --accelerator      MAV_ACCELERATOR: v4-8 ... v4-4096, v5litepod-1 ... v5litepod-256,
#                      v5p-8 ... v5p-12288, v6e-1 ... v6e-256 (-16 and up: several hosts)
#   --runtime_version  MAV_RUNTIME_VERSION; default by family: v2/v3/v4 tpu-ubuntu2204-base,
#                      v5litepod v2-alpha-tpuv5-lite, v5p v2-alpha-tpuv5, v6e v2-alpha-tpuv6e
#   --queued           MAV_QUEUED=1: a queued resource named like the TPU (delete.sh --queued)
#   --wait             with --queued: poll until it is ACTIVE (the slice exists), then return
#   --spot, --preemptible (TPU VM only), --reserved: the capacity to use
#   --dry-run          print the gcloud commands instead of running them
#   Arguments after -- go to the gcloud create command (e.g. --network=NET --subnetwork=SUB).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "accelerator runtime_version queued wait spot preemptible reserved" "$@"
setup_tpu
require accelerator

if [[ -z $RUNTIME_VERSION ]]; then
  case $ACCELERATOR in
    v2-* | v3-* | v4-*) RUNTIME_VERSION=tpu-ubuntu2204-base ;;
    v5litepod-*) RUNTIME_VERSION=v2-alpha-tpuv5-lite ;;
    v5p-*) RUNTIME_VERSION=v2-alpha-tpuv5 ;;
    v6e-*) RUNTIME_VERSION=v2-alpha-tpuv6e ;;
    *) die "no default runtime for --accelerator=$ACCELERATOR (v4-N, v5litepod-N, v5p-N," \
      "v6e-N); pass --runtime_version" ;;
  esac
fi

capacity=()
is_true "$SPOT" && capacity+=(--spot)
is_true "$RESERVED" && capacity+=(--reserved)
if is_true "$PREEMPTIBLE"; then
  is_true "$QUEUED" && die "--preemptible is for TPU VMs; queued resources take --spot"
  capacity+=(--preemptible)
fi
((${#capacity[@]} <= 1)) || die "pick one of --spot, --preemptible, --reserved"

if ! is_true "$QUEUED"; then
  run gcloud compute tpus tpu-vm create "$TPU_NAME" "${LOCATION[@]}" \
    --accelerator-type="$ACCELERATOR" --version="$RUNTIME_VERSION" \
    "${capacity[@]}" "${EXTRA_ARGS[@]}"
  exit 0
fi

run gcloud compute tpus queued-resources create "$TPU_NAME" "${LOCATION[@]}" \
  --node-id="$TPU_NAME" --accelerator-type="$ACCELERATOR" --runtime-version="$RUNTIME_VERSION" \
  "${capacity[@]}" "${EXTRA_ARGS[@]}"
is_true "$WAIT" || exit 0

state=(gcloud compute tpus queued-resources describe "$TPU_NAME" "${LOCATION[@]}"
  --format='value(state.state)')
if dry_run; then
  run "${state[@]}"  # repeated every minute until ACTIVE
  exit 0
fi
while true; do
  current=$("${state[@]}")
  case $current in
    ACTIVE) break ;;
    FAILED | SUSPENDED) die "queued resource $TPU_NAME is $current: delete.sh --queued, then" \
      "create it again" ;;
  esac
  note "queued resource $TPU_NAME is ${current:-not visible yet}; checking again in a minute"
  sleep 60
done
note "queued resource $TPU_NAME is ACTIVE"
