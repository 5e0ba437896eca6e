"""The production images (docker/executor, docker/scheduler) built against the local stand-ins, and
the stand-in Elasticsearch image itself, on a private Docker engine (tests/harness/docker_fixtures.py,
tests/harness/images.py).

The first run debootstraps two root filesystems (about a minute each, then cached); every session
builds the images anew on its empty engine.
"""

from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from es_framework import __version__
from es_framework.dev.docker_engine import DockerEngine
from es_framework.dev.ports import free_port
from tests.harness.images import STANDIN_VERSIONS

pytestmark = pytest.mark.docker

MARATHON_APP = Path(__file__).resolve().parents[2] / "docker" / "marathon.json"
ES_HOME = "/usr/share/elasticsearch"


def inspect_config(engine: DockerEngine, image: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(engine.docker("image", "inspect", image).stdout)[0]["Config"]
    return config


# --- the stand-in Elasticsearch image -------------------------------------------------------------

PROBE = f"""
set -e
cd {ES_HOME}
echo "uid=$(id -u) gid=$(id -g) user=$(id -un) pwd=$(pwd) elastic_container=$ELASTIC_CONTAINER"
for d in bin config config/jvm.options.d data logs lib plugins; do echo "owner $d $(stat -c %u:%g $d)"; done
ls lib
test -x /bin/tini && echo tini ok
test -f config/jvm.options && test -f config/log4j2.properties && echo config files ok
cat config/elasticsearch.yml
head -n 1 config/jvm.options
"""


@pytest.mark.parametrize("major", sorted(STANDIN_VERSIONS))
def test_the_standin_image_has_the_layout_of_the_official_one(
    docker_engine: DockerEngine, standin_image: Callable[[int], str], major: int
) -> None:
    image = standin_image(major)
    version = STANDIN_VERSIONS[major]
    out = docker_engine.docker("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", PROBE).stdout
    assert f"uid=1000 gid=0 user=elasticsearch pwd={ES_HOME} elastic_container=true" in out
    for directory in ("bin", "config", "config/jvm.options.d", "data", "logs", "lib", "plugins"):
        assert f"owner {directory} 1000:0" in out
    assert f"elasticsearch-{version}.jar" in out.split()
    assert "tini ok" in out
    assert "config files ok" in out
    assert 'cluster.name: "docker-cluster"' in out
    assert "network.host: 0.0.0.0" in out
    assert f"Elasticsearch {major} image ({version})" in out  # the two majors' defaults differ
    config = inspect_config(docker_engine, image)
    assert config["User"] == "1000:0"
    assert config["Entrypoint"][0] == "/bin/tini"


def test_the_standin_runs_the_demo_node_and_stops_on_sigterm(
    docker_engine: DockerEngine, standin_image: Callable[[int], str]
) -> None:
    image = standin_image(8)
    http_port, transport_port = free_port(), free_port()
    # The image binds 0.0.0.0 (production mode): as with the official image, one node on a machine
    # that is not prepared for production runs with single-node discovery (bootstrap checks: warnings).
    container = docker_engine.docker(
        "run", "--detach", "--network", "host", image,
        "elasticsearch", f"-Ehttp.port={http_port}", f"-Etransport.port={transport_port}", "-Enode.name=standin-0",
        "-Ediscovery.type=single-node",
    ).stdout.strip()  # fmt: skip
    try:
        body = wait_for_json(f"http://127.0.0.1:{http_port}/", timeout=30, engine=docker_engine, container=container)
        assert body["name"] == "standin-0"
        assert body["cluster_name"] == "docker-cluster"  # from the image's default elasticsearch.yml
        docker_engine.docker("stop", "--time", "20", container)
        state = json.loads(docker_engine.docker("inspect", container).stdout)[0]["State"]
        assert state["ExitCode"] == 0, docker_engine.docker("logs", container).stderr
    finally:
        docker_engine.docker("rm", "--force", container, check=False)


def test_the_standin_refuses_to_run_elasticsearch_as_root(
    docker_engine: DockerEngine, standin_image: Callable[[int], str]
) -> None:
    result = docker_engine.docker("run", "--rm", "--user", "0", standin_image(8), "elasticsearch", check=False)
    assert result.returncode == 1
    assert "can not run elasticsearch as root" in result.stderr


def test_the_standin_keystore_tool(docker_engine: DockerEngine, standin_image: Callable[[int], str]) -> None:
    script = """
    elasticsearch-keystore create >/dev/null
    printf 's3cret' | elasticsearch-keystore add -x bootstrap.password
    printf 'other' | elasticsearch-keystore add -x bootstrap.password
    printf 'newer' | elasticsearch-keystore add -x -f bootstrap.password
    elasticsearch-keystore list
    elasticsearch-keystore has-passwd; echo "has-passwd $?"
    ls -l config/elasticsearch.keystore | cut -d' ' -f1,3
    echo "--- keystore"
    cat config/elasticsearch.keystore
    """
    out = docker_engine.docker("run", "--rm", "--entrypoint", "/bin/sh", standin_image(8), "-c", script).stdout
    out, store = out.split("--- keystore\n")
    assert json.loads(store)["entries"]["bootstrap.password"] == "newer"
    lines = out.splitlines()
    # Without -f an existing setting is kept unless the prompt is answered "y" (here: "other").
    assert "Setting bootstrap.password already exists. Overwrite? [y/N] Exiting without modifying keystore." in lines
    assert "bootstrap.password" in lines
    assert "keystore.seed" in lines
    assert "Keystore is not password-protected" in lines
    assert "has-passwd 1" in lines
    assert "-rw-rw---- elasticsearch" in lines


# --- docker/executor ------------------------------------------------------------------------------


@pytest.mark.parametrize("major", sorted(STANDIN_VERSIONS))
def test_the_executor_image_refuses_to_run_outside_a_mesos_agent(
    docker_engine: DockerEngine, executor_image_for: Callable[[int], str], major: int
) -> None:
    # Built FROM each major's stand-in (the builder stage is shared): the frozen runtime runs on both.
    result = docker_engine.docker("run", "--rm", executor_image_for(major), check=False)
    assert result.returncode == 2, result.stderr
    assert "must be started by a Mesos agent" in result.stderr


def test_the_executor_image_needs_no_python_of_its_own(docker_engine: DockerEngine, executor_image: str) -> None:
    # The frozen runtime brings its interpreter: without the stand-in's python3 it still starts.
    result = docker_engine.docker(
        "run", "--rm", "--entrypoint", "/bin/sh", executor_image, "-c",
        "rm -f /usr/bin/python3*; ! command -v python3 && exec es-mesos-executor",
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "must be started by a Mesos agent" in result.stderr


def test_the_executor_image_runs_its_command_through_tini_as_root(
    docker_engine: DockerEngine, executor_image: str
) -> None:
    config = inspect_config(docker_engine, executor_image)
    assert config["Entrypoint"] == ["/bin/tini", "--"]
    assert config["Cmd"] == ["es-mesos-executor"]
    assert config["User"] in ("root", "0", "")
    assert config["Labels"]["org.opencontainers.image.version"] == __version__
    assert config["Labels"]["es-mesos.elasticsearch.version"] == STANDIN_VERSIONS[8]
    # Still the Elasticsearch image underneath: the version marker the executor reads is there.
    out = docker_engine.docker("run", "--rm", "--entrypoint", "/bin/ls", executor_image, f"{ES_HOME}/lib").stdout
    assert f"elasticsearch-{STANDIN_VERSIONS[8]}.jar" in out.split()


# --- docker/scheduler -----------------------------------------------------------------------------


def test_the_scheduler_image_runs_es_framework_as_a_non_root_user(
    docker_engine: DockerEngine, scheduler_image: str
) -> None:
    config = inspect_config(docker_engine, scheduler_image)
    assert config["Entrypoint"] == ["es-framework"]
    assert config["User"] not in ("", "root", "0")
    assert "31100/tcp" in config["ExposedPorts"]
    result = docker_engine.docker("run", "--rm", scheduler_image, "--version")
    assert f"es-mesos {__version__}" in result.stdout


def test_the_marathon_app_command_works_in_the_scheduler_image(
    docker_engine: DockerEngine, scheduler_image: str, tmp_path: Path
) -> None:
    # As Mesos' Docker containerizer runs a Marathon cmd: the ENTRYPOINT replaced by /bin/sh -c, and
    # the app's volumes (the agent's API token file) mounted as the app says.
    app = json.loads(MARATHON_APP.read_text(encoding="utf-8"))
    env = [arg for name, value in {"PORT0": "31555", **app["env"]}.items() for arg in ("--env", f"{name}={value}")]
    token = tmp_path / "api-token"
    token.write_text("dGhlLWFwaS10b2tlbg==\n", encoding="utf-8")
    token.chmod(0o644)  # the image's user (10001) reads it; on an agent: owned by 10001, mode 400
    mounts = [arg for volume in app["container"]["volumes"] for arg in ("-v", f"{token}:{volume['containerPath']}:ro")]
    result = docker_engine.docker(
        "run", "--rm", *env, *mounts, "--entrypoint", "/bin/sh", scheduler_image, "-c",
        f"{app['cmd']} {shlex.quote('config')}",
    )  # fmt: skip
    config = json.loads(result.stdout)
    assert config["webUiPort"] == 31555
    assert config["externalVolumeDriver"] == "rexray"
    assert config["apiTokenFile"] == "****"


# --- helpers --------------------------------------------------------------------------------------


def wait_for_json(url: str, *, timeout: float, engine: DockerEngine, container: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            time.sleep(0.2)
    logs = engine.docker("logs", container, check=False)
    raise AssertionError(f"{url} did not answer within {timeout} s\n{logs.stdout}\n{logs.stderr}")
