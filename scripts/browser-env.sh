#!/usr/bin/env bash
# Creates (once) a Python virtual environment with Playwright for the browser test of the
# live viewer (tests/browser/viewer.py) and prints the path of its python. Idempotent and
# quiet (stdout is the python path only).
#   scripts/browser-env.sh          -> prints e.g. /path/to/target/browser-env/bin/python
# Override the location with CHORUS_BROWSER_ENV.
#
# What it installs, pinned, from PyPI:
#   httpx                  the HTTP client of the README's Python example (examples/client.py)
#   playwright             the Python driver only. `playwright install` is NOT run: the test
#                          drives Debian's chromium (/usr/bin/chromium, or CHORUS_CHROMIUM)
#                          through executable_path, so no browser is downloaded.
# The browser: when /usr/bin/chromium is missing (and CHORUS_CHROMIUM names no other), the
# script installs Debian's `chromium` with apt-get if it runs as root, else it fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
env="${CHORUS_BROWSER_ENV:-$root/target/browser-env}"
chromium="${CHORUS_CHROMIUM:-/usr/bin/chromium}"
# Bump the number whenever the package set changes, so existing envs get upgraded.
stamp="$env/.chorus-browser-2"
# Tests call this from several threads at once: one builds, the others wait on the lock and
# then find the stamp. The lock file sits beside the env so a fresh env needs no set-up.
mkdir -p "$(dirname "$env")"
exec 9>"$env.lock"
flock 9
if [ ! -x "$chromium" ]; then
  if [ "$chromium" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2 \
      || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2; }
  fi
  if [ ! -x "$chromium" ]; then
    echo "browser-env: no chromium at $chromium; install Debian's chromium" \
         "(as root: apt-get install -y chromium) or set CHORUS_CHROMIUM" >&2
    exit 1
  fi
fi
if [ ! -f "$stamp" ]; then
  [ -x "$env/bin/python" ] && "$env/bin/python" -m pip --version >/dev/null 2>&1 \
    || { rm -rf "$env"; python3 -m venv "$env" >&2; }
  pip=("$env/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" playwright==1.65.3 httpx==0.28.1 >&2
  rm -f "$env"/.chorus-browser-*
  touch "$stamp"
fi
echo "$env/bin/python"
