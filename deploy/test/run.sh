#!/usr/bin/env bash
# The container test (deploy/test/run.py): builds the image, runs the system from deploy/kubernetes with
# podman kube play and checks it against the launcher. Needs root (podman's networks, Debian's
# packages); .ci/run calls it after the test suite. The base tarball and the locked wheels are cached in
# $REPRICER_DEPLOY_CACHE (default /var/cache/book-repricer-deploy): on the machine, never in the repository.
#
#   deploy/test/run.sh --prepare   only the build (tools, base, wheels, image: deploy/test/build.py), with
#                                  python3's standard library: .ci/run starts it in the background while
#                                  the venv is made and pytest runs; the test after it reuses what it built.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    echo "deploy/test/run.sh: needs root (podman networks and Debian packages)" >&2
    exit 2
fi
if [ "${1:-}" = --prepare ]; then
    shift
    exec python3 -m deploy.test.build "$@"
fi
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'; }
exec .venv/bin/python -m deploy.test.run "$@"
