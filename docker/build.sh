#!/bin/sh
# `make docker`: build the broker image and the SDK client image from wheels made on this host.
#
# The base image: $BASE if set; else python:3.11-slim when it is present or can be pulled; else
# (no Docker Hub) the local Debian bookworm base that docker/local-base.sh builds once. The wheels:
# `pip wheel` on the host into build/docker-wheels (the project and awsiotsdk with every
# dependency), installed in the images with --no-index: the build downloads nothing.
#
# Environment: PYTHON (a Python 3.11 with pip; default python3), BASE, TAG
# (aws-iot-mock:latest), CLIENT_TAG (aws-iot-mock-sdk-client:latest).
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TAG=${TAG:-aws-iot-mock:latest}
CLIENT_TAG=${CLIENT_TAG:-aws-iot-mock-sdk-client:latest}
DEFAULT_BASE=python:3.11-slim
LOCAL_BASE=aws-iot-mock-base:bookworm
WHEELS=build/docker-wheels

if [ -z "${BASE:-}" ]; then
    if docker image inspect "$DEFAULT_BASE" >/dev/null 2>&1 \
        || docker pull --quiet "$DEFAULT_BASE" >/dev/null 2>&1; then
        BASE=$DEFAULT_BASE
    else
        echo "docker: cannot pull $DEFAULT_BASE (no Docker Hub?): using the local base $LOCAL_BASE" >&2
        sh docker/local-base.sh "$LOCAL_BASE"
        BASE=$LOCAL_BASE
    fi
fi

echo "docker: wheels for the images into $WHEELS" >&2
rm -rf "$WHEELS"
"$PYTHON" -m pip wheel --quiet --wheel-dir "$WHEELS" . 'awsiotsdk>=1.20' >&2

for image in "$TAG docker/Dockerfile" "$CLIENT_TAG docker/sdk-client/Dockerfile"; do
    set -- $image
    echo "docker: building $1 on $BASE" >&2
    docker build --quiet --build-arg BASE="$BASE" --build-arg WHEELS="$WHEELS" \
        -f "$2" -t "$1" . >&2
done
echo "docker: built $TAG and $CLIENT_TAG" >&2
