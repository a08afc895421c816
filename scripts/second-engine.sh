#!/usr/bin/env bash
# A second Docker Engine beside the first, to play a second CI runner (the registry hand-off test).
#
#   scripts/second-engine.sh start    create its bridge, start dockerd, wait until it answers
#   scripts/second-engine.sh stop     stop that dockerd, remove its bridge (its data root is kept)
#   scripts/second-engine.sh status   exit 0 when it answers, 3 when not
#   scripts/second-engine.sh wipe     stop, then delete its data root (an empty cache next start)
#   scripts/second-engine.sh env      print DOCKER_HOST for it
#
# Everything is its own: --data-root, --exec-root, --pidfile, socket, and its OWN bridge
# (btengb0, 172.31.251.1/24). Never `--bridge none`: on these hosts that once left the first
# engine's docker0 gone. If docker0 disappears anyway, `start` and `stop` put it back (the
# first engine's default bridge, 172.17.0.1/16). Builds use `--network host`, so the second
# engine needs no iptables rules of its own (--iptables=false, --ip-masq=false).
# The registry CA is found where the first engine finds it (/etc/docker/certs.d).
#
# Env: BUILDTOOL_ENGINE_B_NAME (default buildtool-engine-b; names the socket, pidfile, roots),
#      BUILDTOOL_ENGINE_B_BRIDGE (default btengb0), BUILDTOOL_ENGINE_B_CIDR (default 172.31.251.1/24),
#      BUILDTOOL_ENGINE_B_WAIT (seconds, default 60).
set -euo pipefail

NAME=${BUILDTOOL_ENGINE_B_NAME:-buildtool-engine-b}
BRIDGE=${BUILDTOOL_ENGINE_B_BRIDGE:-btengb0}
CIDR=${BUILDTOOL_ENGINE_B_CIDR:-172.31.251.1/24}
WAIT=${BUILDTOOL_ENGINE_B_WAIT:-60}
SOCK=/run/$NAME.sock
PIDFILE=/run/$NAME.pid
EXEC_ROOT=/run/$NAME-exec
DATA_ROOT=/var/lib/$NAME-docker
LOG=/var/log/$NAME.log
HOST=unix://$SOCK

say() { echo "engine-b: $*"; }
die() { echo "engine-b: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (dockerd, ip link)"
DOCKERD=$(command -v dockerd || echo /usr/sbin/dockerd)
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker || true)

answers() { [ -S "$SOCK" ] && [ -n "$DOCKER" ] && timeout 10 "$DOCKER" -H "$HOST" info >/dev/null 2>&1; }

running_pid() {
    [ -s "$PIDFILE" ] || return 1
    local pid; pid=$(cat "$PIDFILE")
    kill -0 "$pid" 2>/dev/null || return 1
    grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# The first engine's docker0, put back when it vanished (only while a first engine runs).
restore_docker0() {
    if ! ip link show docker0 >/dev/null 2>&1 && [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        say "docker0 is gone: restoring it (172.17.0.1/16)"
        ip link add docker0 type bridge
        ip addr add 172.17.0.1/16 dev docker0
        ip link set docker0 up
    fi
}

bridge_up() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    ip addr show dev "$BRIDGE" | grep -q "inet ${CIDR%/*}/" || ip addr add "$CIDR" dev "$BRIDGE"
    ip link set "$BRIDGE" up
}

start() {
    [ -x "$DOCKERD" ] || die "dockerd not found (run scripts/ensure-engine.sh first)"
    if pid=$(running_pid) && answers; then say "running (pid $pid) at $HOST"; return 0; fi
    bridge_up
    mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$LOG")"
    say "starting dockerd at $HOST (data root $DATA_ROOT, bridge $BRIDGE, log $LOG)"
    setsid nohup "$DOCKERD" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
        -H "$HOST" --bridge "$BRIDGE" --iptables=false --ip-masq=false >>"$LOG" 2>&1 </dev/null &
    local i
    for ((i = 0; i < WAIT * 2; i++)); do
        if answers; then
            restore_docker0
            say "started (pid $(cat "$PIDFILE" 2>/dev/null || echo ?)) at $HOST"
            return 0
        fi
        sleep 0.5
    done
    tail -n 20 "$LOG" >&2 || true
    die "dockerd at $HOST did not answer within ${WAIT}s; log: $LOG"
}

stop() {
    local pid
    if pid=$(running_pid); then
        kill "$pid"
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        say "stopped (pid $pid)"
    else
        say "not running"
    fi
    rm -f "$PIDFILE"
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link set "$BRIDGE" down || true
        ip link del "$BRIDGE" || true
    fi
    restore_docker0
}

wipe() {
    stop
    # the overlay mounts of a stopped engine are gone; anything left is plain files
    if [ -d "$DATA_ROOT" ]; then
        rm -rf --one-file-system "$DATA_ROOT"
        say "removed $DATA_ROOT"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    wipe) wipe ;;
    status) if answers; then say "answers at $HOST"; else say "not answering at $HOST"; exit 3; fi ;;
    env) echo "DOCKER_HOST=$HOST" ;;
    *) echo "usage: $0 start|stop|status|wipe|env" >&2; exit 2 ;;
esac
