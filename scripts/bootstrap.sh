#!/usr/bin/env bash
# Install everything nodeport-lb needs on a fresh Debian 12 machine (run as root):
# the Debian tools the lab and the tests drive for real, then a virtualenv in .venv
# with the project and its test dependencies. Safe to run again; fast when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  python3 python3-venv python3-pip git make curl ca-certificates
  iproute2 nftables conntrack socat
  systemd-container debootstrap openssh-client
  dpkg-dev  # dpkg-scanpackages indexes the lab's package repository
  haproxy keepalived
  wrk
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing Debian packages needs root: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  # haproxy/keepalived are only used inside lab hosts and test namespaces: never start
  # them on this machine while installing.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if ((created_policy)); then rm -f "$policy"; fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
  echo "==> pip install -e .[test]"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
