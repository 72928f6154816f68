#!/usr/bin/env bash
# The whole test matrix, on a fresh Debian machine: lint, typing, CPython
# 3.10-3.13 on Linux, and the Windows leg (a real Windows CPython under Wine).
# Installs what it needs (Debian packages, tox); extra arguments go to tox.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages for the Windows leg.
missing=()
command -v wine >/dev/null 2>&1 || missing+=(wine)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing+=(gcc-mingw-w64-x86-64)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "test.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The four CPythons come from pyenv; a missing one fails the run.
if [ -d "${PYENV_ROOT:-$HOME/.pyenv}/shims" ]; then
    export PATH="${PYENV_ROOT:-$HOME/.pyenv}/shims:${PYENV_ROOT:-$HOME/.pyenv}/bin:$PATH"
fi
export PYENV_VERSION=3.11.7:3.10.13:3.12.1:3.13.0
# tox runs its interpreter probes with a cleaned environment where the shims
# cannot see PYENV_VERSION: put each version's own bin folder on PATH.
for version in ${PYENV_VERSION//:/ }; do
    prefix="${PYENV_ROOT:-$HOME/.pyenv}/versions/$version/bin"
    [ -d "$prefix" ] && PATH="$prefix:$PATH"
done
export PATH
for version in 3.10 3.11 3.12 3.13; do
    if ! "python$version" -c "pass" >/dev/null 2>&1; then
        echo "test.sh: error: python$version is missing (pyenv install $version)" >&2
        exit 2
    fi
done

# tox in a venv of its own.
venv=.cache/tox-venv
if [ ! -x "$venv/bin/tox" ]; then
    python3.11 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "tox>=4.22"
fi
exec "$venv/bin/tox" "$@"
