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
echo "test: import contracts (docs/architecture.md)" >&2
.venv/bin/lint-imports --no-cache
# need WHAT PACKAGES -- CHECK...: run CHECK (it prints why it fails); when it fails, install the
# Debian PACKAGES if we are root with apt-get and check again, else warn that WHAT tests are skipped.
need() {
    local what="$1" packages="$2" problem
    shift 3
    echo "test: $what" >&2
    if problem="$("$@" 2>&1)"; then
        return 0
    fi
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test: $problem" >&2
        echo "test: installing the Debian packages $packages" >&2
        apt-get update -qq >&2
        # shellcheck disable=SC2086 # a list of package names
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >&2
        "$@" >&2
    else
        echo "test: WARNING: $problem" >&2
        echo "test: WARNING: not root with apt-get, so not installed; the $what tests are skipped (they fail when CI is set)" >&2
    fi
}
chromium_check() {
    [[ -x /usr/bin/chromium ]] || { echo "/usr/bin/chromium is missing"; return 1; }
}

# The ZooKeeper tests run a real server (es_framework/dev/zookeeper.py): java and the Debian package
# zookeeper (3.8), whose libzookeeper-java brings the jars the harness puts on the classpath.
# es_framework.dev.zookeeper --check is the harness's own check of exactly those files.
need ZooKeeper "zookeeper" -- .venv/bin/python -m es_framework.dev.zookeeper --check
# The container tests (marker docker) run a private Docker engine and build their base images with
# debootstrap (tests/harness/): docker.io, debootstrap, and root.
need Docker "docker.io debootstrap" -- .venv/bin/python -m es_framework.dev.docker_engine --check
# The browser tests drive Debian's Chromium with Playwright (no browser can be downloaded here).
need Chromium "chromium fonts-dejavu-core" -- chromium_check
# In parallel (pytest-xdist): most tests wait on processes (ZooKeeper, demo nodes, the development
# master, docker builds), so 3 workers beat 2 on this 2-core machine, and 4 gain nothing more. Tests that
# share fixed ports or the private Docker engine run in one worker each (xdist_group: tests/conftest.py).
# ES_MESOS_TEST_WORKERS overrides the count; so does -n N among the arguments (-n 0: one process).
workers="${ES_MESOS_TEST_WORKERS:-3}"
echo "test: pytest ($workers workers)" >&2
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
