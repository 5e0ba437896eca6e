#!/usr/bin/env bash
# The project's test command (README, .ci/run): set up .venv with the development tools, then
# lint, type-check and run the tests. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh --dev

echo "test: ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "test: mypy" >&2
.venv/bin/mypy
echo "test: ZooKeeper" >&2
# The ZooKeeper tests run a real server (tests/zookeeper.py): java and the Debian package
# zookeeper (3.8), whose libzookeeper-java brings the jars the harness puts on the classpath.
# tests.zookeeper --check is the harness's own check of exactly those files.
if ! zk_problem="$(.venv/bin/python -m tests.zookeeper --check 2>&1)"; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test: $zk_problem" >&2
        echo "test: installing the Debian package zookeeper" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zookeeper >&2
        .venv/bin/python -m tests.zookeeper --check >&2
    else
        echo "test: WARNING: $zk_problem" >&2
        echo "test: WARNING: not root with apt-get, so not installed; the ZooKeeper tests are skipped (they fail when CI is set)" >&2
    fi
fi
echo "test: Docker" >&2
# The image tests (tests/test_docker_images.py, marker docker) run a private Docker engine and build
# their base images with debootstrap (tests/docker_world/): the Debian packages docker.io and
# debootstrap, and root. tests.docker_world.engine --check is the harness's own check.
if ! docker_problem="$(.venv/bin/python -m tests.docker_world.engine --check 2>&1)"; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test: $docker_problem" >&2
        echo "test: installing the Debian packages docker.io and debootstrap" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >&2
        .venv/bin/python -m tests.docker_world.engine --check >&2
    else
        echo "test: WARNING: $docker_problem" >&2
        echo "test: WARNING: not root with apt-get, so not installed; the Docker tests are skipped (they fail when CI is set)" >&2
    fi
fi
echo "test: Chromium" >&2
# The browser tests (tests/test_ui_browser.py, the web UI in the end-to-end tests) drive Debian's
# Chromium with Playwright; no browser can be downloaded by Playwright itself here.
if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test: installing the Debian packages chromium and fonts-dejavu-core" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
    else
        echo "test: WARNING: /usr/bin/chromium is missing; the browser tests are skipped (they fail when CI is set)" >&2
    fi
fi
echo "test: pytest" >&2
exec .venv/bin/python -m pytest "$@"
