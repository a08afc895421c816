#!/usr/bin/env bash
# A local Docker registry for publish tests: Debian's `docker-registry` (distribution 2.8)
# on 127.0.0.1 with TLS (its own CA) and htpasswd (bcrypt) auth.
#
#   scripts/registry.sh start    install (apt) when missing, generate CA/cert/password once, start, wait for 401
#   scripts/registry.sh stop     stop the registry started by this script
#   scripts/registry.sh status   exit 0 when it answers (401 without credentials), 3 when it does not
#   scripts/registry.sh env      print the variables buildtool reads (never the password itself)
#
# Everything lives in the state folder, never in the repository:
#   $STATE/ca.crt ca.key          the registry's own CA (also installed as
#                                 /etc/docker/certs.d/127.0.0.1:$PORT/ca.crt, so the engine trusts it)
#   $STATE/server.crt server.key  server certificate for 127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost)
#   $STATE/user  $STATE/password  the account (password: generated once, mode 0600, root only)
#   $STATE/htpasswd               bcrypt
#   $STATE/config.yml  storage/  registry.pid  registry.log
#
# Env: BUILDTOOL_REGISTRY_STATE (default /var/lib/buildtool-registry),
#      BUILDTOOL_REGISTRY_PORT (default 5000), BUILDTOOL_REGISTRY_WAIT (seconds, default 30).
set -euo pipefail

STATE=${BUILDTOOL_REGISTRY_STATE:-/var/lib/buildtool-registry}
PORT=${BUILDTOOL_REGISTRY_PORT:-5000}
WAIT=${BUILDTOOL_REGISTRY_WAIT:-30}
HOST=127.0.0.1
ADDR="$HOST:$PORT"
CERTS_D=${BUILDTOOL_DOCKER_CERTS_D:-/etc/docker/certs.d}
USER_NAME=buildtool
PIDFILE="$STATE/registry.$PORT.pid"
LOGFILE="$STATE/registry.$PORT.log"
CONFIG="$STATE/config.$PORT.yml"

say() { echo "registry: $*"; }
die() { echo "registry: error: $*" >&2; exit 1; }

# Root is needed (apt, /etc/docker/certs.d, a root-only password file): re-run under sudo when not root.
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root (apt, /etc/docker/certs.d and a root-only state folder)"
    exec sudo -E "$0" "$@"
fi

install_packages() {
    local missing=()
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v htpasswd >/dev/null || missing+=(apache2-utils)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
    say "installing ${missing[*]} (apt)"
    local out; out=$(mktemp)
    env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$out" 2>&1 || { cat "$out" >&2; rm -f "$out"; die "apt-get update failed"; }
    # policy-rc.d is not touched: Debian's package does not start a service without systemd,
    # and our instance runs with its own config on its own port.
    env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >"$out" 2>&1 \
        || { tail -n 30 "$out" >&2; rm -f "$out"; die "apt-get install ${missing[*]} failed"; }
    rm -f "$out"
}

generate() {
    mkdir -p "$STATE/storage"
    chmod 700 "$STATE"
    if [ ! -s "$STATE/ca.crt" ] || [ ! -s "$STATE/ca.key" ]; then
        say "generating a CA ($STATE/ca.crt)"
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=buildtool test registry CA" \
            -keyout "$STATE/ca.key" -out "$STATE/ca.crt" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 \
            || die "openssl could not make the CA"
        rm -f "$STATE/server.crt"
    fi
    if [ ! -s "$STATE/server.crt" ] || [ ! -s "$STATE/server.key" ]; then
        say "generating the server certificate for $HOST"
        local ext; ext=$(mktemp)
        printf '%s\n' "subjectAltName=IP:$HOST,DNS:localhost" "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$ext"
        openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$HOST" \
            -keyout "$STATE/server.key" -out "$STATE/server.csr" >/dev/null 2>&1 || die "openssl could not make the server key"
        openssl x509 -req -in "$STATE/server.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial \
            -days 825 -sha256 -extfile "$ext" -out "$STATE/server.crt" >/dev/null 2>&1 || die "openssl could not sign the server certificate"
        rm -f "$ext" "$STATE/server.csr"
    fi
    chmod 600 "$STATE/ca.key" "$STATE/server.key"
    if [ ! -s "$STATE/password" ]; then
        say "generating the password of '$USER_NAME' ($STATE/password, mode 0600)"
        (umask 077; openssl rand -hex 24 | tee "$STATE/password" >/dev/null)
        rm -f "$STATE/htpasswd"
    fi
    chmod 600 "$STATE/password"
    echo "$USER_NAME" | tee "$STATE/user" >/dev/null
    if [ ! -s "$STATE/htpasswd" ]; then
        # -i: the password on stdin, never on a command line (ps would show it).
        htpasswd -iBc "$STATE/htpasswd" "$USER_NAME" <"$STATE/password" >/dev/null 2>&1 || die "htpasswd failed"
        chmod 600 "$STATE/htpasswd"
    fi
    tee "$CONFIG" >/dev/null <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
  fields:
    service: buildtool-test-registry
storage:
  filesystem:
    rootdirectory: $STATE/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $ADDR
  secret: $(openssl rand -hex 16)
  tls:
    certificate: $STATE/server.crt
    key: $STATE/server.key
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: buildtool-test-registry
    path: $STATE/htpasswd
EOF
    chmod 600 "$CONFIG"
    # The engine trusts the registry's CA through certs.d (read per connection: no restart).
    mkdir -p "$CERTS_D/$ADDR"
    cp "$STATE/ca.crt" "$CERTS_D/$ADDR/ca.crt"
}

running_pid() {
    [ -s "$PIDFILE" ] || return 1
    local pid; pid=$(cat "$PIDFILE")
    kill -0 "$pid" 2>/dev/null || return 1
    grep -q docker-registry "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# 401 without credentials: TLS with our CA works and auth is on.
answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$STATE/ca.crt" "https://$ADDR/v2/" 2>/dev/null) || true
    [ "$code" = "401" ]
}

start() {
    install_packages
    generate
    if pid=$(running_pid); then
        answers && { say "running (pid $pid) at https://$ADDR"; return 0; }
        say "pid $pid does not answer; restarting it"
        stop
    fi
    if answers; then die "something else already answers at https://$ADDR (not started by this script)"; fi
    if ss -ltn 2>/dev/null | awk '{print $4}' | grep -qx "$ADDR"; then die "port $PORT on $HOST is taken by another program"; fi
    local bin; bin=$(command -v docker-registry)
    # setsid: the registry outlives this shell (and make), in its own session; a background
    # child of a non-interactive shell is no group leader, so setsid execs in place and $! is its pid.
    setsid "$bin" serve "$CONFIG" >>"$LOGFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local t=0
    while ! answers; do
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then tail -n 20 "$LOGFILE" >&2; die "docker-registry exited; log: $LOGFILE"; fi
        t=$((t + 1))
        [ "$t" -gt $((WAIT * 5)) ] && { tail -n 20 "$LOGFILE" >&2; die "https://$ADDR/v2/ did not answer 401 within ${WAIT}s; log: $LOGFILE"; }
        sleep 0.2
    done
    say "started (pid $(cat "$PIDFILE")) at https://$ADDR: TLS (CA $STATE/ca.crt, trusted via $CERTS_D/$ADDR/ca.crt), htpasswd user '$USER_NAME', password in $STATE/password"
}

stop() {
    local pid
    if ! pid=$(running_pid); then say "not running at $ADDR"; rm -f "$PIDFILE"; return 0; fi
    kill "$pid"
    local t=0
    while kill -0 "$pid" 2>/dev/null; do
        t=$((t + 1))
        if [ "$t" -gt 50 ]; then kill -9 "$pid" 2>/dev/null || true; fi
        sleep 0.1
    done
    rm -f "$PIDFILE"
    say "stopped (pid $pid)"
}

status() {
    if pid=$(running_pid) && answers; then
        say "running (pid $pid) at https://$ADDR; user '$USER_NAME', password file $STATE/password, CA $STATE/ca.crt"
        return 0
    fi
    say "not answering at https://$ADDR"
    return 3
}

env_lines() {
    echo "BUILDTOOL_REGISTRY=$ADDR"
    echo "BUILDTOOL_REGISTRY_USER=$USER_NAME"
    echo "BUILDTOOL_REGISTRY_PASSWORD_FILE=$STATE/password"
    echo "BUILDTOOL_REGISTRY_CA=$STATE/ca.crt"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    env) env_lines ;;
    *) echo "usage: $0 start|stop|restart|status|env" >&2; exit 2 ;;
esac
