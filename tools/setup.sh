#!/usr/bin/env bash
# portmsg's main job on a fresh machine: build portmsg into a virtual
# environment of its own (.venv in this checkout) and run `portmsg probe`.
#
# Installs what is missing first, with apt on Debian / Ubuntu (the system
# python3 may lack venv, a C compiler or the Python headers).  Needs Python
# 3.10 or newer: PYTHON=/path/to/python3.x picks another one.  Safe to run
# again; extra arguments go to `portmsg probe` (e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: error: $* missing, and this is not a Debian/Ubuntu machine: install them, then run this again" >&2
        exit 2
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "setup.sh: error: installing $* needs root (or sudo)" >&2; exit 2; }
        sudo=sudo
    fi
    echo "setup.sh: installing $*" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "setup.sh: error: portmsg needs Python 3.10 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
    echo "setup.sh: run with PYTHON=/path/to/python3.10-or-newer" >&2
    exit 2
fi
# A free-threaded CPython needs cffi 2.0 or newer, which supports 3.14t and later (it refuses 3.13t).
if "$PYTHON" -c 'import sys, sysconfig; sys.exit(not (sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info < (3, 14)))'; then
    echo "setup.sh: error: $PYTHON is a free-threaded CPython older than 3.14: cffi, portmsg's one dependency, supports free-threading from 3.14t on" >&2
    echo "setup.sh: run with PYTHON=/path/to/python3.14t (or a CPython with the GIL)" >&2
    exit 2
fi

missing=()
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
"$PYTHON" - <<'EOF' || missing+=(python3-dev)
import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
EOF
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Editable: the extension is built inside the checkout, so `python -m portmsg`
# also works from here (a plain install would be shadowed by this folder).
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
echo "setup.sh: portmsg is installed in $(pwd)/.venv: run .venv/bin/portmsg, or '. .venv/bin/activate' first" >&2
exec .venv/bin/portmsg probe "$@"
