#!/usr/bin/env bash
# `make demo`: the main job on the lab. Brings the lab up when it is not running, runs
# site.yml against it, then shows what an operator wants to see.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

if ! nodeport-lb lab status >/dev/null 2>&1; then
  step "nodeport-lb lab up"
  nodeport-lb lab up
fi

step "ansible-playbook site.yml"
start=$SECONDS
ansible-playbook site.yml
echo "site.yml took $((SECONDS - start)) s"

step "what the lab looks like now"
nodeport-lb lab status
step "the VIP, HAProxy's view of the nodes, and one request through the VIP"
nodeport-lb summary
