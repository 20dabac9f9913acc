#!/usr/bin/env bash
# A Docker-API engine for the docker tests where no Docker daemon and no image registry exist:
# podman's API service on a unix socket, and a Debian base image built locally with debootstrap.
#
#   eval "$(bash scripts/podman.sh env)"   # set up (idempotent, seconds when done), print exports
#   bash scripts/podman.sh stop            # stop the API service this script started
#
# `env` prints `export DOCKER_HOST=...` and `export TANDEM_TEST_BASE_IMAGE=...` on stdout (progress
# goes to stderr) and exits non-zero, saying why, when podman cannot be set up here. The base image
# is cached as a tarball (TANDEM_CACHE, default ~/.cache/tandem), so only the first run needs the
# Debian mirror. Needs root (rootful podman) and apt-get to install what is missing.
set -euo pipefail

cache="${TANDEM_CACHE:-$HOME/.cache/tandem}"
dir="$cache/podman"
sock="$dir/podman.sock"
conf="$dir/containers.conf"
pidfile="$dir/service.pid"
base_tar="$cache/base-bookworm.tar.gz"
base_image="localhost/tandem-base:bookworm"
# The Debian mirror this machine's apt already uses (its first "URIs:" or "deb" line), unless set.
# Missing files are fine (`|| true`: pipefail and set -e would end the script without a word).
apt_mirror() {
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
    awk '(/^URIs:/ || /^deb /) && $2 ~ /debian\/?$/ {print $2; exit}'
}
mirror="${TANDEM_DEBIAN_MIRROR:-$(apt_mirror)}"
# iptables: netavark (podman's network stack) calls it; without it every container start fails
# with "netavark: No such file or directory".
packages=(podman runc debootstrap docker-compose iptables)

say() { echo "podman.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

install_packages() {
  local missing=()
  for cmd in "${packages[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root to install them"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]} (apt-get)"
  # --no-install-recommends: docker-compose would otherwise pull in the docker.io daemon.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${packages[@]}" slirp4netns uidmap netavark aardvark-dns fuse-overlayfs catatonit curl \
    >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${packages[@]}" slirp4netns uidmap netavark \
    aardvark-dns fuse-overlayfs catatonit curl >/dev/null; } || die "apt-get install failed"
}

write_conf() {
  # runc refuses to raise rlimits past this machine's hard limits (podman's defaults are higher),
  # so every container gets explicit ones: the current hard limits, capped.
  local nofile nproc
  nofile="$(ulimit -Hn)"
  nproc="$(ulimit -Hu)"
  [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
  write_conf_with "$nofile" "$nproc"
}

write_conf_with() {
  mkdir -p "$dir"
  cat >"$conf.tmp" <<EOF
[containers]
default_ulimits = ["nofile=$1:$1", "nproc=$2:$2"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
  mv "$conf.tmp" "$conf"
}

answering() { curl -sf --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; }

start_service() {
  answering && return 0
  stop_service
  rm -f "$sock"
  say "starting the podman API service on $sock"
  CONTAINERS_CONF="$conf" setsid podman system service --time=0 "unix://$sock" \
    >"$dir/service.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 150); do
    answering && return 0
    sleep 0.2
  done
  die "the podman API service did not answer within 30s (log: $dir/service.log)"
}

stop_service() {
  if [ -f "$pidfile" ]; then
    local pid
    pid="$(cat "$pidfile")"
    # Ours only if it still is the service (/proc/PID/cmdline separates arguments with NULs).
    if kill -0 "$pid" 2>/dev/null &&
      tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "system service"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
  fi
}

base_image() {
  CONTAINERS_CONF="$conf" podman image exists "$base_image" && return 0
  if [ ! -s "$base_tar" ]; then
    say "building the base image with debootstrap (Debian bookworm + python3; about 2 minutes)"
    local root
    rm -rf "$cache"/rootfs.*
    root="$(mktemp -d "$cache/rootfs.XXXXXX")"
    [ -n "$mirror" ] || die "no Debian mirror in /etc/apt; set TANDEM_DEBIAN_MIRROR"
    debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv,python3-pip \
      bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      die "debootstrap failed (log: $cache/debootstrap.log)"
    # Trust the CAs this machine trusts (a TLS-intercepting proxy's), so pip works in builds.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
      cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
      chroot "$root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
    tar -C "$root" --numeric-owner -cf - . | gzip -1 >"$base_tar.tmp"
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$root"
  fi
  say "importing $base_tar as $base_image"
  CONTAINERS_CONF="$conf" podman import -q --change 'CMD ["/bin/bash"]' "$base_tar" "$base_image" \
    >/dev/null || die "podman import failed"
}

runs_containers() {
  CONTAINERS_CONF="$conf" podman run --rm "$base_image" python3 -c 'print("ok")' 2>&1 | grep -q ok
}

case "${1:-env}" in
  env)
    mkdir -p "$dir"
    install_packages
    [ -f "$conf" ] || write_conf
    base_image
    if ! runs_containers; then
      say "containers do not start with the current ulimits; retrying with 1024:1024"
      write_conf_with 1024 1024
      stop_service
      runs_containers || die "podman cannot run a container here"
    fi
    start_service
    echo "export DOCKER_HOST=unix://$sock"
    echo "export TANDEM_TEST_BASE_IMAGE=$base_image"
    ;;
  stop) stop_service ;;
  *) die "usage: podman.sh [env|stop]" ;;
esac
