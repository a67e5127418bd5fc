#!/usr/bin/env bash
# Shared helpers for the project's scripts. Source it; do not run it.
# shellcheck disable=SC2034
set -euo pipefail

PROJECT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$PROJECT_ROOT/.venv}
CACHE_DIR=${PRODREADY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prodready-webstack}

log()  { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Run as root or through sudo (docker, debootstrap and apt need it).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else command -v sudo >/dev/null || die "need root or sudo for: $*"; sudo "$@"; fi
}

# Activate the project venv, creating it when missing.
use_venv() {
  "$PROJECT_ROOT/scripts/setup-venv" >&2
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  export ANSIBLE_CONFIG="$PROJECT_ROOT/ansible.cfg"
  # Make the checkout resolvable as prodready.webstack (see scripts/setup-venv).
  export ANSIBLE_COLLECTIONS_PATH="$PROJECT_ROOT/.collections:${ANSIBLE_COLLECTIONS_PATH:-}"
}

# Start (or reuse) a systemd target container. --privileged fails on this kind of host;
# these are the flags that work (see .config/molecule/config.yml for the Molecule twin).
run_target_container() {
  local name=$1 image=$2; shift 2
  if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
    return 0
  fi
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --hostname "$name" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    "$@" "$image" /lib/systemd/systemd >/dev/null || die "cannot start container $name from $image"
  for _ in $(seq 1 30); do
    state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) return 0 ;; esac
    sleep 1
  done
  die "container $name did not finish booting (systemctl is-system-running: ${state:-no answer})"
}
