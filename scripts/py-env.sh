#!/usr/bin/env bash
# Creates (once) the Python environment the tests use to read exports with tools nobody here
# wrote: pyarrow (Parquet) and duckdb. Prints the interpreter path on standard output.
#   scripts/py-env.sh            # venv in target/py-env (override with CHORUS_PY_ENV)
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=${CHORUS_PY_ENV:-$PWD/target/py-env}
mkdir -p "$(dirname "$env_dir")"
exec 9>"$env_dir.lock"   # tests call this from several threads at once
flock 9
if ! "$env_dir/bin/python" -c 'import pyarrow, duckdb' >/dev/null 2>&1; then
  python3 -m venv "$env_dir" >&2
  "$env_dir/bin/pip" install --quiet --disable-pip-version-check 'pyarrow==21.0.0' 'duckdb==1.3.2' >&2
fi
echo "$env_dir/bin/python"
