#!/bin/sh
# Build a local Debian bookworm base image for docker/Dockerfile where Docker Hub cannot be
# reached (python:3.11-slim cannot be pulled): debootstrap a minimal root filesystem with
# Python 3.11 from the apt mirror this machine already uses, and `docker import` it.
#
#   sh docker/local-base.sh [TAG]        default TAG: aws-iot-mock-base:bookworm
#
# Idempotent: when TAG exists it does nothing, so the slow part (about a minute or two) runs once
# per machine. Needs root (debootstrap) and the debootstrap package. The mirror is read from the
# apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/); set MIRROR to override it.
set -eu

TAG=${1:-aws-iot-mock-base:bookworm}
SUITE=bookworm

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "local-base: $TAG exists" >&2
    exit 0
fi

# The first source that serves $SUITE main (one-line "deb URI SUITE main" or deb822 stanzas).
if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] && cat "$f" && echo
        done | awk -v suite="$SUITE" '
            /^deb[ \t]/ {
                n = split($0, w, /[ \t]+/); i = 2
                if (w[i] ~ /^\[/) { while (i <= n && w[i] !~ /\]$/) i++; i++ }
                if (w[i + 1] == suite) { print w[i]; exit }
                next
            }
            /^[ \t]*$/ {
                if (uris != "" && suites ~ ("(^| )" suite "( |$)")) { split(uris, u, " "); print u[1]; exit }
                uris = ""; suites = ""; next
            }
            /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
        '
    )
fi
if [ -z "$MIRROR" ]; then
    echo "local-base: no apt source for $SUITE found; set MIRROR=<debian mirror URL>" >&2
    exit 1
fi

ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT
echo "local-base: debootstrap $SUITE from $MIRROR (minbase + python3, python3-venv)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >&2
# Drop what an image does not need: apt lists and caches, documentation.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$TAG" >&2
echo "local-base: built $TAG" >&2
