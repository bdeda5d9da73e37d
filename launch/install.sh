#!/usr/bin/env bash
# Install mav_jax on every worker of the slice, in a venv ~/mav_venv with jax[tpu]: this checkout
# as it is on disk (a `git archive` tarball of the tracked and new files, .gitignore'd ones left
# out, committed or not) or a git URL. Run it again after changing the code: it replaces ~/mav_jax
# and keeps the venv.
#
# Usage: launch/install.sh --project=P --zone=Z --tpu_name=N [--git_url=URL [--git_ref=REF]]
#            [--python=3.12] [--dry-run]
#
#   --git_url   MAV_GIT_URL: clone this repository on every worker instead of copying the checkout
#   --git_ref   MAV_GIT_REF: branch, tag or commit to check out from --git_url
#   --python    MAV_PYTHON: Python version of the venv (mav_jax needs >= 3.11; the TPU images ship
#               3.10, so uv fetches this one)
#   --ssh_args  MAV_SSH_ARGS: more flags for gcloud ssh/scp, e.g. --ssh_args=--tunnel-through-iap
#   --dry-run   print the commands instead of running them
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "git_url git_ref python" "$@"
setup_tpu

if [[ -n $GIT_URL ]]; then
  fetch="rm -rf ~/mav_jax; git clone -q $(quote "$GIT_URL") ~/mav_jax"
  [[ -z $GIT_REF ]] || fetch+="; git -C ~/mav_jax checkout -q $(quote "$GIT_REF")"
else
  [[ -z $GIT_REF ]] || die "--git_ref needs --git_url"
  # The working tree as a git tree (tracked and new files, .gitignore'd ones left out), staged
  # in a scratch copy of the index so that the checkout's own index stays untouched.
  index=$(mktemp)
  tarball="${TMPDIR:-/tmp}/mav_jax-$TPU_NAME.tar.gz"
  trap 'rm -f "$index" "$tarball"' EXIT
  tree=$(cd "$REPO_DIR" && cp "$(git rev-parse --git-path index)" "$index" &&
    GIT_INDEX_FILE=$index git add -A && GIT_INDEX_FILE=$index git write-tree) ||
    die "could not snapshot $REPO_DIR (a git checkout with a commit); or pass --git_url"
  run git -C "$REPO_DIR" archive --format=tar.gz --output="$tarball" "$tree"
  run gcloud compute tpus tpu-vm scp "$tarball" "$TPU_NAME:mav_jax.tar.gz" "${LOCATION[@]}" \
    --worker=all "${SSH_EXTRA[@]}"
  fetch="rm -rf ~/mav_jax; mkdir ~/mav_jax; tar -xzf ~/mav_jax.tar.gz -C ~/mav_jax"
fi

# uv brings the Python the venv asks for (the TPU images have 3.10; mav_jax needs >= 3.11).
user_pip="python3 -m pip install -q --user"
uv="$user_pip uv || $user_pip --break-system-packages uv"
venv="test -x ~/mav_venv/bin/python || ~/.local/bin/uv venv -q --seed \
--python $(quote "$PYTHON") ~/mav_venv"
check="python -c 'import jax, mav_jax; print(\"mav_jax installed, jax\", jax.__version__)'"
tpu_ssh all "set -e; $fetch; $uv; $venv; $REMOTE_ENV; pip install -q -U pip 'jax[tpu]'; \
pip install -q -e .; $check"
