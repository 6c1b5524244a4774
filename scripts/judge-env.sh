#!/usr/bin/env bash
# Creates (once) a Python virtual environment with the independent judges the tests use
# (VADER sentiment, from PyPI) and prints the path of its python. Idempotent and quiet.
#   scripts/judge-env.sh            -> prints e.g. /path/to/target/judge-env/bin/python
# Override the location with CHORUS_JUDGE_ENV.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
env="${CHORUS_JUDGE_ENV:-$root/target/judge-env}"
stamp="$env/.chorus-judges-1"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$env" >&2
  "$env/bin/pip" install --quiet --disable-pip-version-check vaderSentiment==3.3.2 >&2
  touch "$stamp"
fi
echo "$env/bin/python"
