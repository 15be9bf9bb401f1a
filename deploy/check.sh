#!/usr/bin/env bash
# CI checks of deploy/ that this machine can run (no Docker engine, no Kubernetes cluster):
#   1. compose.yaml and k8s/*.yaml parse, and hold what they promise (check_manifests.py);
#      the Dockerfile's stages, user, ports, healthcheck and entrypoint; the unit's sandbox;
#   2. the systemd unit passes `systemd-analyze verify` (with ExecStart pointed at the built
#      binary, since the unit names /usr/local/bin/entrepot);
#   3. every example config, and the Kubernetes ConfigMap's config, loads in the node through
#      `entrepot config check`; the compose init script is valid sh.
# Needs python3 with PyYAML (Debian: python3-yaml) and, for step 2, systemd-analyze (Debian:
# systemd); .ci/run installs both. Usage: deploy/check.sh [path/to/entrepot]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ge 1 ]; then
  bin="$1"
else
  # Always through cargo: a binary left in the target directory by an earlier run may be stale.
  echo "== cargo build --release --bin entrepot"
  cargo build --release --bin entrepot
  bin="${CARGO_TARGET_DIR:-target}/release/entrepot"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A python3 that has PyYAML: the one on PATH, else Debian's.
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then py="$p"; break; fi
done
[ -n "$py" ] || { echo "error: no python3 with PyYAML (apt-get install python3-yaml)" >&2; exit 1; }

echo "== deploy: manifests, Dockerfile and unit structure"
"$py" deploy/check_manifests.py --configmap-out "$tmp/k8s-config.toml"

echo "== deploy: systemd-analyze verify"
if command -v systemd-analyze >/dev/null 2>&1; then
  unit="$tmp/entrepot.service"
  sed "s|/usr/local/bin/entrepot|$(realpath "$bin")|g" deploy/systemd/entrepot.service > "$unit"
  # verify exits 0 on some warnings (unknown keys are "ignoring"): any output is a failure.
  out="$(systemd-analyze verify "$unit" 2>&1)" || { echo "$out" >&2; exit 1; }
  if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
  echo "  systemd-analyze verify: ok"
else
  echo "  systemd-analyze is not installed: only the structural unit check above ran"
fi

echo "== deploy: example configs load in the node"
"$bin" config check --template deploy/config/*.toml "$tmp/k8s-config.toml"
sh -n deploy/compose/init-node.sh
echo "  compose/init-node.sh: sh syntax ok"
echo "== deploy: all checks passed (docker build is not run: no Docker engine on CI)"
