#!/bin/sh
# One-shot init step of a compose node (see deploy/compose.yaml), run as the image's user.
# Creates the node directory once, publishes this node's public key to the shared exchange
# volume, waits for the other publishers' keys and adds them to the keyring. Adding a key that
# is already there replaces it with itself, so the step is safe to rerun on every `up`.
#
# Environment: ORG (empty for a replica), ORG_NAME, NETWORK, TRUST (space-separated ids of the
# publishing organizations whose keys this node must trust).
set -eu
DIR=/var/lib/entrepot
EX=/exchange
entrepot() { /usr/local/bin/entrepot --dir "$DIR" "$@"; }

if [ ! -f "$DIR/config.toml" ]; then
  if [ -n "${ORG:-}" ]; then
    entrepot init --org "$ORG" --name "${ORG_NAME:-$ORG}" --network "$NETWORK" --http-listen 0.0.0.0:8080
  else
    entrepot init --replica --network "$NETWORK" --http-listen 0.0.0.0:8080
  fi
  # Peers find each other by mDNS on the compose network: a lab, never a production network
  # (where [p2p] bootstrap lists the peers' multiaddresses).
  sed -i 's/^mdns = false/mdns = true/' "$DIR/config.toml"
fi
if [ -n "${ORG:-}" ]; then
  entrepot public-key > "$EX/$ORG.pub.tmp" && mv "$EX/$ORG.pub.tmp" "$EX/$ORG.pub"
fi
for other in ${TRUST:-}; do
  [ "$other" = "${ORG:-}" ] && continue
  waited=0
  until [ -s "$EX/$other.pub" ]; do
    [ "$waited" -ge 120 ] && { echo "no public key of $other after 120 s" >&2; exit 1; }
    sleep 1; waited=$((waited + 1))
  done
  entrepot keyring add --org "$other" --name "$other" --key "$(cat "$EX/$other.pub")"
done
entrepot config check
