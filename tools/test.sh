#!/usr/bin/env bash
# The whole test matrix: lint, typing, sanitizers, CPython 3.10-3.13 (the
# behaviour tests and CPython's own test_socket), and the Windows leg (a real
# Windows CPython under Wine).  Makes tox's venv (.cache/tox-venv) from the
# system python3 if need be, then tools/matrix.py installs what the chosen
# envs need and runs them.  Arguments: -e ENV[,ENV] picks envs; the rest go
# to tox (`bash tools/test.sh -e 3.12 -- -k truncated`).
set -euo pipefail
cd "$(dirname "$0")/.."

# pyenv's CPythons, where the machine has them (this project's do): the newest
# installed patch release of each supported minor version, whatever they are
# (a `pyenv install 3.12` made on advice counts).  tox runs its interpreter
# probes with a cleaned environment where the shims cannot see PYENV_VERSION,
# so each version's own bin folder goes on PATH.
root="${PYENV_ROOT:-$HOME/.pyenv}"
if [ -d "$root/versions" ]; then
    picked=()
    for minor in 3.11 3.10 3.12 3.13 3.14; do
        newest=$(ls "$root/versions" | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
        [ -n "$newest" ] && picked+=("$newest")
    done
    if [ "${#picked[@]}" -gt 0 ]; then
        PYENV_VERSION=$(IFS=:; echo "${picked[*]}")
        export PYENV_VERSION
        PATH="$root/shims:$root/bin:$PATH"
        for version in "${picked[@]}"; do
            PATH="$root/versions/$version/bin:$PATH"
        done
        export PATH
    fi
fi

venv=.cache/tox-venv
if [ ! -x "$venv/bin/tox" ]; then
    python=$(command -v python3.11 || command -v python3 || true)
    if [ -z "$python" ] || ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        echo "test.sh: installing python3 and python3-venv" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >/dev/null
        python=$(command -v python3)
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "tox>=4.22"
fi
exec "$venv/bin/python" tools/matrix.py "$@"
