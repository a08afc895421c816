#!/usr/bin/env bash
# Make sure a Docker Engine answers, and that the tools `buildtool bases` and
# `buildtool build` need are installed. Idempotent; one line when all is fine.
#
#   - an engine answering at $DOCKER_HOST (or the default socket) is used as is;
#   - otherwise Debian's docker.io (engine 20.10) is installed when dockerd is
#     missing, and dockerd is started in the background (log:
#     /var/log/buildtool-dockerd.log), then we wait up to 60 s for it;
#   - a client that speaks BuildKit is required: Debian's /usr/bin/docker
#     (20.10, built-in BuildKit) or any client with the buildx plugin. A newer
#     client without buildx (e.g. Docker 28 in /usr/local/bin) negotiates the
#     API down to 1.41 fine for `docker info/run/inspect`, but refuses
#     `DOCKER_BUILDKIT=1 docker build` ("buildx component is missing");
#   - debootstrap is installed when missing (bases are bootstrapped locally);
#   - arm64 emulation (Debian's qemu-user-static + binfmt-support) is installed and
#     registered when the host is not arm64 and no aarch64 handler is registered:
#     linux/arm64 bases, builds and checks run under it (BUILDTOOL_NO_EMULATION=1 skips).
#
# Env: DOCKER_HOST (respected), BUILDTOOL_DOCKERD_LOG (log path),
#      BUILDTOOL_ENGINE_WAIT (seconds to wait, default 60).
set -euo pipefail

LOG=${BUILDTOOL_DOCKERD_LOG:-/var/log/buildtool-dockerd.log}
WAIT=${BUILDTOOL_ENGINE_WAIT:-60}
DEFAULT_SOCK=unix:///var/run/docker.sock
APT_UPDATED=0

say() { echo "engine: $*"; }
die() { echo "engine: error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    local out; out=$(mktemp)
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$out" 2>&1 || { cat "$out" >&2; rm -f "$out"; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    say "installing $* (apt)"
    as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >"$out" 2>&1 \
        || { tail -n 30 "$out" >&2; rm -f "$out"; die "apt-get install $* failed"; }
    rm -f "$out"
}

# The docker client to talk to the engine with: the one on PATH, else Debian's.
client() {
    if command -v docker >/dev/null; then echo docker
    elif [ -x /usr/bin/docker ]; then echo /usr/bin/docker
    else echo ""
    fi
}

answers() {
    local c; c=$(client)
    [ -n "$c" ] && timeout 10 "$c" info >/dev/null 2>&1
}

# A client that can run `DOCKER_BUILDKIT=1 docker build`: Debian's 20.10 client
# (BuildKit built in), or any client with the buildx plugin.
buildkit_client() {
    if [ -x /usr/bin/docker ] && /usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
        echo /usr/bin/docker; return
    fi
    local c; c=$(client)
    if [ -n "$c" ] && "$c" buildx version >/dev/null 2>&1; then echo "$c"; return; fi
    echo ""
}

describe() {
    local c; c=$(client)
    local v
    v=$("$c" version --format 'Docker Engine {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}} (API {{.Client.APIVersion}})' 2>/dev/null) \
        || die "\`$c version\` fails against the engine at ${DOCKER_HOST:-$DEFAULT_SOCK}: $("$c" version 2>&1 | tail -n 1)"
    say "$v at ${DOCKER_HOST:-$DEFAULT_SOCK}; BuildKit client: $(buildkit_client)"
}

ensure_tools() {
    local want=()
    command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || want+=(debootstrap)
    if [ -z "$(buildkit_client)" ] && ! dpkg -s docker.io >/dev/null 2>&1; then want+=(docker.io); fi
    if [ ${#want[@]} -gt 0 ]; then apt_install "${want[@]}"; fi
    [ -n "$(buildkit_client)" ] || die "no docker client that speaks BuildKit (want /usr/bin/docker from docker.io, or the buildx plugin)"
}

# A binfmt_misc handler for aarch64 ELF binaries (qemu-user-static's is registered with the F flag, so it
# works inside containers and chroots too).
emulation_ready() {
    [ "$(uname -m)" = aarch64 ] || [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]
}

ensure_emulation() {
    [ "${BUILDTOOL_NO_EMULATION:-}" = 1 ] && return 0
    emulation_ready && return 0
    local want=()
    dpkg -s qemu-user-static >/dev/null 2>&1 || want+=(qemu-user-static)
    dpkg -s binfmt-support >/dev/null 2>&1 || want+=(binfmt-support)
    if [ ${#want[@]} -gt 0 ]; then apt_install "${want[@]}"; fi
    [ -e /proc/sys/fs/binfmt_misc/register ] || as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    as_root update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || as_root update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
    emulation_ready || die "arm64 emulation is not registered (qemu-user-static + binfmt-support installed, but no /proc/sys/fs/binfmt_misc/qemu-aarch64); linux/arm64 needs it"
    say "arm64 emulation registered (qemu-user-static)"
}

start_dockerd() {
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "$DEFAULT_SOCK" ]; then
        die "no Docker Engine answers at DOCKER_HOST=$DOCKER_HOST; this script only starts the default engine ($DEFAULT_SOCK): start that engine, or unset DOCKER_HOST"
    fi
    if ! command -v dockerd >/dev/null && [ ! -x /usr/sbin/dockerd ]; then
        apt_install docker.io
    fi
    local dockerd; dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
    # A dockerd that is still starting up (or hung) owns the pidfile: don't start a second one.
    local pid=""
    [ -f /var/run/docker.pid ] && pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        say "dockerd (pid $pid) is running but does not answer yet; waiting"
    else
        say "starting dockerd (log: $LOG)"
        as_root mkdir -p "$(dirname "$LOG")"
        # setsid + nohup: the engine survives this shell and its session.
        as_root setsid nohup "$dockerd" >>"$LOG" 2>&1 </dev/null &
    fi
    local i
    for ((i = 0; i < WAIT; i++)); do
        if answers; then return 0; fi
        sleep 1
    done
    echo "engine: error: dockerd did not answer within ${WAIT}s; last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2 || true
    exit 1
}

main() {
    if ! answers; then
        start_dockerd
    fi
    ensure_tools
    ensure_emulation
    describe
}

main "$@"
