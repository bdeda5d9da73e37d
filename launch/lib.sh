# shellcheck shell=bash
# Shared by the launch/ scripts (sourced, never run): parameters, flag parsing, the `run` helper
# that prints (--dry-run) or executes a command, and the gcloud pieces every script uses.
#
# Every flag --NAME=VALUE (or --NAME VALUE) can also be set by the environment variable MAV_NAME,
# NAME in upper case: --tpu_name / MAV_TPU_NAME, --dry-run / MAV_DRY_RUN=1. Flags win.
# shellcheck disable=SC2034  # the variables set here are read by the scripts that source this file

set -euo pipefail

if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404)); then
  echo "launch/: needs bash >= 4.4, this is $BASH_VERSION (macOS: brew install bash)" >&2
  exit 2
fi

LAUNCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$LAUNCH_DIR")

# On every worker (paths relative to the home directory of the ssh user).
# shellcheck disable=SC2088  # the remote shell expands the tilde
REMOTE_LOG="~/mav_jax_train.log"  # appended to by every start of train.sh
REMOTE_ENV="set -e; cd ~/mav_jax; . ~/mav_venv/bin/activate"  # after install.sh
TRAIN_PATTERN="^python[^ ]* -m mav_jax[.]train"  # pgrep -f pattern of the training process

# Parameters: flag name -> default (the MAV_* variable, else the value here).
BOOLEAN_FLAGS=" dry_run queued wait spot preemptible reserved follow yes "
declare -A DEFAULTS=(
  [project]="" [zone]="" [tpu_name]="" [accelerator]="" [runtime_version]=""
  [bucket]="" [config]="" [run]="" [workdir]="" [data_dir]="" [output]=""
  [git_url]="" [git_ref]="" [python]="3.12" [worker]="0" [tail]="100" [ssh_args]=""
  [dry_run]="0" [queued]="0" [wait]="0" [spot]="0" [preemptible]="0" [reserved]="0"
  [follow]="0" [yes]="0"
  [region]="" [dataset]="video_collection" [source]="" [name]="" [frame_size]="64"
  [max_workers]="100" [machine_type]="n2-standard-8" [job_name]=""
)
for _flag in "${!DEFAULTS[@]}"; do
  _env="MAV_${_flag^^}"
  printf -v "${_flag^^}" '%s' "${!_env:-${DEFAULTS[$_flag]}}"
done
unset _flag _env
OVERRIDES=()   # --config.FIELD=VALUE (train.sh, run_all.sh)
EXTRA_ARGS=()  # everything after --

die() { echo "${0##*/}: $*" >&2; exit 2; }
note() { echo "${0##*/}: $*" >&2; }
is_true() { [[ ${1,,} =~ ^(1|true|yes|on)$ ]]; }
dry_run() { is_true "$DRY_RUN"; }

# The header comment of the running script, without the '#'.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# parse_flags "FLAG ..." "$@": the script's flags (besides project zone tpu_name dry_run ssh_args);
# "overrides" in the list also accepts --config.FIELD=VALUE.
parse_flags() {
  local allowed=" $1 project zone tpu_name dry_run ssh_args " arg key value
  shift
  while (($#)); do
    arg=$1
    shift
    case $arg in
      -h | --help) usage; exit 0 ;;
      --) EXTRA_ARGS+=("$@"); break ;;
      --config.*)
        [[ $allowed == *" overrides "* ]] || die "$arg: config overrides go to train.sh"
        OVERRIDES+=("$arg") ;;
      --*)
        key=${arg#--}
        key=${key%%=*}
        key=${key//-/_}
        [[ $allowed == *" $key "* ]] || die "unknown flag --$key (see ${0##*/} --help)"
        if [[ $arg == *=* ]]; then
          value=${arg#*=}
        elif [[ $BOOLEAN_FLAGS == *" $key "* ]]; then
          value=1
        else
          (($#)) || die "--$key needs a value"
          value=$1
          shift
        fi
        printf -v "${key^^}" '%s' "$value" ;;
      *) die "unexpected argument '$arg' (see ${0##*/} --help)" ;;
    esac
  done
}

# require FLAG ...: exits with one message naming every missing flag and its variable.
require() {
  local key var missing=""
  for key; do
    var=${key^^}
    [[ -n ${!var} ]] || missing+="${missing:+, }--$key (or MAV_$var)"
  done
  [[ -z $missing ]] || die "missing required parameter(s): $missing"
}

# A word as the shell would need it typed: bare when safe, else in single quotes.
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

quote_args() {
  local arg words=()
  for arg; do words+=("$(quote "$arg")"); done
  printf '%s\n' "${words[*]}"
}

# run CMD ARGS...: with --dry-run print '+ CMD ARGS' (one line, shell-quoted); else run it.
run() {
  if dry_run; then
    echo "+ $(quote_args "$@")"
  else
    note "+ $(quote_args "$@")"
    "$@"
  fi
}

# After parse_flags: checks the slice parameters and sets LOCATION and SSH_EXTRA.
setup_tpu() {
  require project zone tpu_name
  LOCATION=(--project="$PROJECT" --zone="$ZONE")
  read -ra SSH_EXTRA <<<"$SSH_ARGS"  # e.g. --ssh_args='--tunnel-through-iap'
}

# tpu_ssh WORKER COMMAND: run a shell command on one worker (0, 1, ...) or on all at once.
tpu_ssh() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${LOCATION[@]}" --worker="$1" \
    "${SSH_EXTRA[@]}" --command="$2"
}

# The run's workdir: --workdir, else gs://BUCKET/runs/RUN. Always on GCS: every host writes there.
resolve_workdir() {
  if [[ -z $WORKDIR ]]; then
    [[ -n $BUCKET && -n $RUN ]] || die "missing required parameter(s): --workdir=gs://..." \
      "(or MAV_WORKDIR), or --bucket and --run (or MAV_BUCKET and MAV_RUN)"
    WORKDIR="gs://${BUCKET#gs://}/runs/$RUN"
  fi
  [[ $WORKDIR == gs://* ]] ||
    die "--workdir must be a gs:// path (every host writes there): $WORKDIR"
}

# The TFDS data dir the workers read: --data_dir, else gs://BUCKET/tensorflow_datasets.
resolve_data_dir() {
  if [[ -z $DATA_DIR ]]; then
    [[ -n $BUCKET ]] ||
      die "missing required parameter(s): --data_dir (or MAV_DATA_DIR), or --bucket (or MAV_BUCKET)"
    DATA_DIR="gs://${BUCKET#gs://}/tensorflow_datasets"
  fi
}
