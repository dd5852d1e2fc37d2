#!/bin/sh
# Install what `make bench` needs that is missing, and nothing else:
#   Debian's mosquitto (the broker) and mosquitto-clients (mosquitto_pub / mosquitto_sub),
#   amqtt in the venv (normally there already: it is a dev dependency).
# Usage: bench/ensure-deps.sh [PYTHON]   (default .venv/bin/python)
set -eu
PY=${1:-.venv/bin/python}

have_broker() {
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]
}

missing=""
have_broker || missing="$missing mosquitto"
{ command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; } \
    || missing="$missing mosquitto-clients"

if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bench: needs the packages:$missing (Debian names); install them first" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    fi
    echo "bench: installing$missing" >&2
    # Try without refreshing the package lists first; refresh only if that fails.
    # shellcheck disable=SC2086 # word splitting of $missing is intended
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; then
        $SUDO apt-get update -q
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    fi
fi

if ! "$PY" -c "import amqtt" >/dev/null 2>&1; then
    echo "bench: installing amqtt" >&2
    "$PY" -m pip install --quiet "amqtt>=0.11"
fi
