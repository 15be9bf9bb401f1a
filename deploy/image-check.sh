#!/usr/bin/env bash
# Builds the real container image from deploy/Dockerfile and runs the compose lab from it, on a
# machine with no Docker Hub and no working OCI runtime (this CI machine):
#   1. a Debian bookworm base image made here with `debootstrap --variant=minbase` from the
#      Debian archive and `podman import` (cached between runs in $ENTREPOT_IMAGE_CACHE);
#   2. `podman build --isolation chroot` of deploy/Dockerfile, unchanged, with its two build
#      arguments pointing at that base and at an image holding the binary cargo built (the
#      builder stage needs rust:1.95-bookworm from Docker Hub, which cannot be pulled here);
#   3. what the image holds: its config (user, entrypoint, command, healthcheck, ports, volume,
#      stop signal), the binary running as uid 10001 inside it, the home directory;
#   4. the compose lab's three nodes (deploy/compose.yaml: WCO, WTO, a replica) run from the
#      mounted image: each "container" is the image's root file system (read only, a tmpfs on
#      /tmp, the compose volumes bound in) in its own mount and network namespace on one bridge,
#      started as uid 10001 with the image's entrypoint; the init services run
#      deploy/compose/init-node.sh with compose.yaml's environment. Both publishers publish and
#      the replica must hold both documents; the image's healthcheck command passes in each.
# `podman run` is not used: it fails here (crun cannot set RLIMIT_NPROC without
# CAP_SYS_RESOURCE). Without podman or debootstrap the check is skipped with a message, unless
# CI is set: then it fails (.ci/run installs both). Needs root (namespaces, mounts).
# Usage: deploy/image-check.sh [path/to/entrepot]
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  if [ -n "${CI:-}" ]; then echo "error: $* (CI is set: the image check must run)" >&2; exit 1; fi
  echo "  image check skipped: $*"; exit 0
}
echo "== deploy: container image (podman build) and the compose lab from it"
command -v podman >/dev/null 2>&1 || skip "podman is not installed (apt-get install podman)"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap is not installed (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, mounts)"
command -v ip >/dev/null 2>&1 || skip "iproute2 is not installed"

if [ $# -ge 1 ]; then
  bin="$1"
else
  echo "== cargo build --release --bin entrepot"
  cargo build --release --bin entrepot
  bin="${CARGO_TARGET_DIR:-target}/release/entrepot"
fi
bin="$(realpath "$bin")"
cache="${ENTREPOT_IMAGE_CACHE:-/var/cache/entrepot/image}"
mkdir -p "$cache"
tag=entrepot:0.1.0 # the name compose.yaml runs
base=localhost/entrepot-base:bookworm
binary=localhost/entrepot-binary:check
lab=entlab # prefix of this check's network namespaces and bridge
tmp="$(mktemp -d)"
pids=()
mnt=""

# Every process in the lab's namespaces (a node is a few execs below the shell that started
# it): SIGTERM, as compose stops a service, then SIGKILL after its 30 s grace period.
lab_pids() { for n in wco wto replica; do ip netns pids "$lab-$n" 2>/dev/null || true; done; }
lab_teardown() {
  local left
  left="$(lab_pids)"
  if [ -n "$left" ]; then
    kill $left 2>/dev/null || true
    for _ in $(seq 1 300); do [ -z "$(lab_pids)" ] && break; sleep 0.1; done
    left="$(lab_pids)"; [ -z "$left" ] || kill -9 $left 2>/dev/null || true
  fi
  for n in wco wto replica; do ip netns del "$lab-$n" 2>/dev/null || true; done
  for i in 2 3 4; do ip link del "el-$i" 2>/dev/null || true; done
  ip link del "$lab-br" 2>/dev/null || true
}
cleanup() {
  lab_teardown
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "$mnt" ] || podman image unmount "$tag" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
lab_teardown # what a run that was killed may have left
trap cleanup EXIT

# ---- 1. the base image.
if ! podman image exists "$base"; then
  if [ ! -s "$cache/bookworm-minbase.tar" ]; then
    echo "  debootstrap --variant=minbase bookworm (from the Debian archive)"
    debootstrap --variant=minbase bookworm "$tmp/rootfs" http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1 \
      || { tail -20 "$tmp/debootstrap.log" >&2; echo "error: debootstrap failed" >&2; exit 1; }
    tar -C "$tmp/rootfs" -cf "$cache/bookworm-minbase.tar.part" . && mv "$cache/bookworm-minbase.tar.part" "$cache/bookworm-minbase.tar"
    rm -rf "$tmp/rootfs"
  fi
  podman import "$cache/bookworm-minbase.tar" "$base" >/dev/null 2>&1
fi
echo "  base image: $base"

# ---- 2. the image, built from deploy/Dockerfile as it is.
mkdir -p "$tmp/binctx"
# Stripped, as the builder stage does (the release profile keeps line tables: ~500 MB).
strip -o "$tmp/binctx/entrepot" "$bin"
printf 'FROM scratch\nCOPY entrepot /entrepot\n' >"$tmp/binctx/Containerfile"
podman build --quiet --isolation chroot --pull=never -t "$binary" "$tmp/binctx" >/dev/null
podman build --quiet --isolation chroot --format docker --pull=never \
  --build-arg RUNTIME_BASE="$base" --build-arg BINARY_FROM="$binary" \
  -f deploy/Dockerfile -t "$tag" . >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log" >&2; echo "error: podman build of deploy/Dockerfile failed" >&2; exit 1; }
echo "  podman build -f deploy/Dockerfile: $tag, $(( $(podman image inspect --format '{{.Size}}' "$tag") / 1000000 )) MB"

# ---- 3. what the image holds.
podman image inspect "$tag" >"$tmp/inspect.json"
python3 - "$tmp/inspect.json" <<'EOF'
import json, sys
image = json.load(open(sys.argv[1]))[0]
cfg = image["Config"]
def need(ok, what):
    if not ok:
        sys.exit(f"error: image config: {what}; config is {json.dumps(cfg)}")
need(cfg.get("User") == "entrepot:entrepot", "USER entrepot:entrepot")
need(cfg.get("Entrypoint") == ["/usr/local/bin/entrepot", "--dir", "/var/lib/entrepot"], "ENTRYPOINT")
need(cfg.get("Cmd") == ["run"], 'CMD ["run"]')
need(cfg.get("WorkingDir") == "/var/lib/entrepot", "WORKDIR /var/lib/entrepot")
need(set(cfg.get("ExposedPorts", {})) == {"4001/tcp", "8080/tcp"}, "EXPOSE 4001 8080")
need(set(cfg.get("Volumes", {})) == {"/var/lib/entrepot"}, "VOLUME /var/lib/entrepot")
need(cfg.get("StopSignal") == "SIGTERM", "STOPSIGNAL SIGTERM")
hc = image.get("Healthcheck") or {}
need(hc.get("Test", [])[:2] == ["CMD", "curl"] and hc["Test"][-1] == "http://127.0.0.1:8080/healthz", "HEALTHCHECK curl /healthz")
need(hc.get("Interval") == 30 * 10**9 and hc.get("Timeout") == 5 * 10**9 and hc.get("Retries") == 3, "HEALTHCHECK every 30 s, 5 s timeout, 3 retries")
need("RUST_LOG=info" in cfg.get("Env", []), "ENV RUST_LOG=info")
print("  image config: user, entrypoint, command, healthcheck, ports, volume, stop signal: ok")
EOF
mnt="$(podman image mount "$tag")"
grep -q '^entrepot:x:10001:10001:' "$mnt/etc/passwd" || { echo "error: no user entrepot with uid/gid 10001 in the image" >&2; exit 1; }
[ "$(stat -c '%u:%g %a' "$mnt/var/lib/entrepot")" = "10001:10001 700" ] \
  || { echo "error: /var/lib/entrepot is $(stat -c '%u:%g %a' "$mnt/var/lib/entrepot"), not 10001:10001 700" >&2; exit 1; }
[ -x "$mnt/usr/bin/curl" ] || { echo "error: the image lacks curl, which its healthcheck runs" >&2; exit 1; }
version="$(chroot --userspec=10001:10001 "$mnt" /usr/local/bin/entrepot --version)"
echo "  in the image, as uid 10001: $version; /var/lib/entrepot 10001:10001 0700; curl present"

# ---- 4. the compose lab from the mounted image.
# One service's environment (compose.yaml is the source; the lab must follow it).
service_env() {
  python3 - "$1" <<'EOF'
import shlex, sys, yaml
svc = yaml.safe_load(open("deploy/compose.yaml"))["services"][sys.argv[1]]
for k, v in (svc.get("environment") or {}).items():
    print(f"{k}={shlex.quote(str(v))}")
EOF
}
ip link add "$lab-br" type bridge
ip addr add 10.89.0.1/24 dev "$lab-br"
ip link set "$lab-br" up
mkdir -p "$tmp/exchange"
chown 10001:10001 "$tmp/exchange" # the compose file's exchange-perms service
i=1
for n in wco wto replica; do
  i=$((i + 1))
  ip netns add "$lab-$n"
  ip link add "el-$i" type veth peer name eth0 netns "$lab-$n" # host side; names are ≤ 15 bytes
  ip link set "el-$i" master "$lab-br" up
  ip -n "$lab-$n" addr add "10.89.0.$i/24" dev eth0
  ip -n "$lab-$n" link set eth0 up
  ip -n "$lab-$n" link set lo up
  ip -n "$lab-$n" link set eth0 multicast on
  mkdir -p "$tmp/$n/data" "$tmp/$n/root"
  chown 10001:10001 "$tmp/$n/data"
done

# Runs CMD… in node N's container, as compose.yaml describes it: the image's root file system
# read only (an overlay over the mounted image, so that the volumes' mount points can be made),
# a tmpfs on /tmp, the node's data volume, the exchange volume and the init script bound in; its
# own mount and network namespaces; as uid 10001, the image's user; a clean environment with
# the image's ENV.
chroot_bin="$(command -v chroot)"
in_container() {
  local n="$1"; shift
  ip netns exec "$lab-$n" unshare --mount --propagation private /bin/sh -euc '
    dir="$1"; img="$2"; ex="$3"; init="$4"; chroot="$5"; shift 5
    root="$dir/root"
    mkdir -p "$dir/upper" "$dir/work"
    mount -t overlay overlay -o "lowerdir=$img,upperdir=$dir/upper,workdir=$dir/work" "$root"
    mkdir -p "$root/exchange" && touch "$root/init-node.sh"
    mount --bind "$dir/data" "$root/var/lib/entrepot"
    mount --bind "$ex" "$root/exchange"
    mount --bind "$init" "$root/init-node.sh" && mount -o remount,bind,ro "$root/init-node.sh"
    mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"
    mount -o remount,bind,ro "$root"
    exec env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/var/lib/entrepot RUST_LOG=info \
      "$chroot" --userspec=10001:10001 "$root" "$@"
  ' sh "$tmp/$n" "$mnt" "$tmp/exchange" "$PWD/deploy/compose/init-node.sh" "$chroot_bin" "$@"
}

init_pids=()
for n in wco wto replica; do
  (
    eval "$(service_env "$n-init")"
    # shellcheck disable=SC2154 # set by the eval from compose.yaml
    in_container "$n" /usr/bin/env ORG="${ORG:-}" ORG_NAME="${ORG_NAME:-}" NETWORK="$NETWORK" TRUST="${TRUST:-}" \
      /bin/sh /init-node.sh
  ) >"$tmp/$n-init.log" 2>&1 &
  init_pids+=($!)
done
for j in 0 1 2; do
  n=(wco wto replica); n="${n[$j]}"
  wait "${init_pids[$j]}" || { cat "$tmp/$n-init.log" >&2; echo "error: $n-init failed" >&2; exit 1; }
done
echo "  init services (compose/init-node.sh): wco, wto, replica done"

for n in wco wto replica; do
  in_container "$n" /usr/local/bin/entrepot --dir /var/lib/entrepot run >"$tmp/$n.log" 2>&1 &
  pids+=($!)
done
ip_of() { case "$1" in wco) echo 10.89.0.2 ;; wto) echo 10.89.0.3 ;; replica) echo 10.89.0.4 ;; esac; }
for n in wco wto replica; do
  ok=""
  for _ in $(seq 1 300); do
    if in_container "$n" /usr/bin/curl -fsS -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null; then ok=1; break; fi
    sleep 0.2
  done
  [ -n "$ok" ] || { tail -30 "$tmp/$n.log" >&2; echo "error: $n: the image's healthcheck did not pass within 60 s" >&2; exit 1; }
done
echo "  nodes running from the image; the image's healthcheck passes in each"

publish() { # node reference title
  local n="$1" token
  token="$(cat "$tmp/$n/data/keys/api.token")"
  curl -fsS -X POST "http://$(ip_of "$n"):8080/v1/documents?type=classification.opinion" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data-binary @- >/dev/null <<EOF
{"title": {"en": "$3"}, "reference": "$2", "product": {"description": {"en": "A product classified in the lab."}},
 "classification": {"edition": "HS2022", "code": "8806.22"}, "gir": ["1", "6"],
 "reasons": {"en": "Heading 8806 covers unmanned aircraft."}, "validity": {"from": "2022-01-01"}}
EOF
}
publish wco LAB/WCO/1 "Published by the WCO node of the compose lab"
publish wto LAB/WTO/1 "Published by the WTO node of the compose lab"
held=""
for _ in $(seq 1 120); do
  held="$(curl -fsS "http://$(ip_of replica):8080/v1/documents?type=classification.opinion&limit=10" \
    | python3 -c 'import json, sys; print(" ".join(sorted(d["publisher"] for d in json.load(sys.stdin)["documents"])))' || true)"
  [ "$held" = "WCO WTO" ] && break
  sleep 1
done
if [ "$held" != "WCO WTO" ]; then
  for n in wco wto replica; do echo "--- $n" >&2; tail -20 "$tmp/$n.log" >&2; done
  echo "error: the replica holds opinions from [$held], not from WCO and WTO, after 120 s" >&2; exit 1
fi
echo "  compose lab converged: the replica holds and verified the documents of WCO and WTO"
# Stopped as compose stops a service: SIGTERM, and out within its 30 s grace period.
left="$(lab_pids)"
kill $left
for _ in $(seq 1 300); do [ -z "$(lab_pids)" ] && break; sleep 0.1; done
[ -z "$(lab_pids)" ] || { echo "error: nodes still running 30 s after SIGTERM (compose's stop_grace_period)" >&2; exit 1; }
echo "  SIGTERM: every node stopped within compose's 30 s grace period"
echo "== deploy: image built from deploy/Dockerfile and the compose lab ran from it"
