#!/usr/bin/env bash
# CI checks of deploy/ that this machine can run (no Docker engine, no Kubernetes cluster):
#   1. compose.yaml and k8s/*.yaml parse, and hold what they promise (check_manifests.py);
#      the Dockerfile's stages, user, ports, healthcheck and entrypoint; the unit's sandbox;
#   2. the systemd unit passes `systemd-analyze verify` (with ExecStart pointed at the built
#      binary, since the unit names /usr/local/bin/entrepot);
#   3. every example config, and the Kubernetes ConfigMap's config, loads in the node through
#      `entrepot config check`; the compose init script is valid sh;
#   4. the Prometheus alert rules pass `promtool check rules` and their scenarios
#      (`promtool test rules prometheus/alerts_test.yml`), a live node's /metrics passes
#      `promtool check metrics`, and every metric the rules and the Grafana dashboard query is
#      one that node exposes (check_metric_names.py).
# Needs python3 with PyYAML (Debian: python3-yaml), for step 2 systemd-analyze (Debian:
# systemd) and for step 4 promtool (Debian: prometheus); .ci/run installs them. Without
# promtool, step 4 checks only the names, unless CI is set: then it fails.
# Usage: deploy/check.sh [path/to/entrepot]
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
node_pid=""
trap '[ -z "$node_pid" ] || kill "$node_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

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
echo "== deploy: Prometheus rules and Grafana dashboard against a live node's /metrics"
promtool=""
if command -v promtool >/dev/null 2>&1; then
  promtool=promtool
elif [ -n "${CI:-}" ]; then
  echo "error: CI is set and promtool is missing (apt-get install prometheus)" >&2; exit 1
else
  echo "  promtool is not installed: rules and metrics are not linted, only their names checked"
fi
if [ -n "$promtool" ]; then
  "$promtool" check rules deploy/prometheus/alerts.yml
  # Scenarios: a catch-up's feed gaps fire no refusal alert, a bad signature does, etc.
  "$promtool" test rules deploy/prometheus/alerts_test.yml
fi
# A charter replica, made with the operator's commands (README, "Operating a charter network"):
# its /metrics has the charter series the expiry alerts query, besides every other one.
root="$("$bin" charter keygen --out "$tmp/root.key" | sed -n 's/^public key //p')"
wco="$("$bin" charter keygen --out "$tmp/wco.key" | sed -n 's/^public key //p')"
cat > "$tmp/genesis.json" <<EOF
{"expires": "2099-12-31T00:00:00Z", "root": {"keys": ["$root"], "threshold": 1},
 "organizations": [{"id": "WCO", "name": "World Customs Organization", "role": "secretariat",
   "keys": [{"key": "$wco", "valid_from_seq": 1}], "permissions": [{"type": "hs.amendment"}]}]}
EOF
hash="$("$bin" charter genesis --input "$tmp/genesis.json" --out "$tmp/v1.charter" | sed -n 's/^hash //p')"
"$bin" charter sign "$tmp/v1.charter" --key "$tmp/root.key" >/dev/null
"$bin" init --dir "$tmp/node" --replica --network deploy-check \
  --genesis-hash "$hash" --charter "$tmp/v1.charter" >/dev/null
"$bin" serve --dir "$tmp/node" --listen 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
node_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's|^serving \(http://[^/]*\)/.*|\1|p' "$tmp/serve.log")"
  [ -n "$url" ] && break
  kill -0 "$node_pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; echo "error: entrepot serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$tmp/serve.log" >&2; echo "error: entrepot serve did not start in 10 s" >&2; exit 1; }
"$py" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
  "$url/metrics" > "$tmp/metrics.txt"
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
if [ -n "$promtool" ]; then
  # promtool prints lint findings and exits 0 on some of them: any output is a failure.
  out="$("$promtool" check metrics < "$tmp/metrics.txt" 2>&1)" || { echo "$out" >&2; exit 1; }
  if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
  echo "  promtool check metrics: clean"
fi
"$py" deploy/check_metric_names.py "$tmp/metrics.txt" deploy/prometheus/alerts.yml deploy/grafana/entrepot.json
echo "== deploy: all checks passed (the image itself: deploy/image-check.sh)"
