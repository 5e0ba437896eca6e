"""The scheduler↔executor contract: what task_builder writes is what the executor reads back."""

from __future__ import annotations

import ast
import base64
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from es_framework import contract
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import build_task_info
from es_framework.executor.process import elasticsearch_user
from es_framework.executor.settings import NodeSettings
from tests.harness.builders import config, offer

LAUNCH = "0123456789abcdef0123456789abcdef"
VIEW = ClusterView(
    desired_nodes=3,
    seed_hosts=("agent1.example.com:31001", "agent2.example.com:31001"),
    initial_master_nodes=("elasticsearch1", "elasticsearch2", "elasticsearch3"),
)


def environment(task: dict[str, Any]) -> dict[str, str]:
    """Every variable of the executor's command, secrets decoded."""
    env: dict[str, str] = {}
    for variable in task["executor"]["command"]["environment"]["variables"]:
        if variable.get("type") == "SECRET":
            env[variable["name"]] = base64.b64decode(variable["secret"]["value"]["data"]).decode()
        else:
            env[variable["name"]] = variable["value"]
    return env


def contract_names(env: dict[str, str]) -> set[str]:
    return {name for name in env if name.startswith("ELASTICSEARCH_") or name == contract.ENV_ELASTIC_PASSWORD}


def tasks(tmp_path: Path) -> list[dict[str, Any]]:
    """Task definitions that between them use every variable the scheduler may write."""
    password = tmp_path / "password"
    password.write_text("s3 cret\n")
    bundle_password = tmp_path / "bundle-password"
    bundle_password.write_text("bundle s3cret")
    secured = dataclasses.replace(
        config(
            externalVolumeDriver="rexray",
            elasticsearchPasswordFile=str(password),
            elasticsearchCertificatesUrl="https://certs.example.com/elastic-certificates.p12",
            elasticsearchCertificatesPasswordFile=str(bundle_password),
        ),
        user_settings={"indices.memory.index_buffer_size": "20%", "path.repo": ["/backups", "/more"]},
    )
    by_ip = config(useIpAddress="true")
    return [
        build_task_info(parse_offer(offer(5)), 1, secured, VIEW, launch_id=LAUNCH),
        build_task_info(parse_offer(offer(6, hostname="localhost")), 4, by_ip, VIEW, launch_id=LAUNCH),
        build_task_info(parse_offer(offer(7)), 2, config(), ClusterView(desired_nodes=3), launch_id=LAUNCH),
        build_task_info(parse_offer(offer(8)), 3, config(**MESOS_CONTAINERIZER), VIEW, launch_id=LAUNCH),
    ]


MESOS_CONTAINERIZER = {
    "frameworkUseDocker": "false",
    "elasticsearchBinaryUrl": "https://artifacts.example.com/elasticsearch-8.15.0.tar.gz",
    "elasticsearchUser": "es",
}


def relative(sandbox: Path, value: str) -> Path:
    return Path(value) if Path(value).is_absolute() else sandbox / value


#: For each scheduler variable: whether the executor's settings hold the value the scheduler wrote.
READ_BACK: dict[str, Callable[[NodeSettings, str, dict[str, str]], bool]] = {
    contract.ENV_CONTRACT_VERSION: lambda s, v, _: s.contract == int(v) == contract.CONTRACT_VERSION,
    contract.ENV_NODE_ID: lambda s, v, _: s.node_id == v,
    contract.ENV_NODE_NAME: lambda s, v, _: s.node_name == v,
    contract.ENV_CLUSTER_NAME: lambda s, v, _: s.cluster_name == v,
    # Not the executor's to use: it reaches Elasticsearch's environment like every plain variable.
    contract.ENV_FRAMEWORK_NAME: lambda s, v, _: s.child_env[contract.ENV_FRAMEWORK_NAME] == v,
    contract.ENV_HTTP_PORT: lambda s, v, _: str(s.http_port) == v,
    contract.ENV_TRANSPORT_PORT: lambda s, v, _: str(s.transport_port) == v,
    contract.ENV_PUBLISH_HOST: lambda s, v, env: (
        s.publish_host == v if env[contract.ENV_USE_IP_ADDRESS] == "false" else s.publish_host in ("127.0.0.1", "::1")
    ),
    contract.ENV_USE_IP_ADDRESS: lambda s, v, env: (v == "true") == (s.publish_host != env[contract.ENV_PUBLISH_HOST]),
    contract.ENV_SEED_HOSTS: lambda s, v, _: contract.join_list(s.seed_hosts) == v,
    contract.ENV_NODE_ROLES: lambda s, v, _: s.roles is not None and contract.join_list(s.roles) == v,
    contract.ENV_USER_SETTINGS: lambda s, v, _: dict(s.user_settings) == json.loads(v),
    contract.ENV_INITIAL_MASTER_NODES: lambda s, v, _: contract.join_list(s.initial_master_nodes) == v,
    contract.ENV_SECURITY: lambda s, v, _: s.security_enabled == (v == contract.SECURITY_ENABLED),
    contract.ENV_CERTIFICATES: lambda s, v, _: s.certificates == relative(s.sandbox, v),
    contract.ENV_DATA_PATH: lambda s, v, _: s.data_path == relative(s.sandbox, v),
    contract.ENV_CONFIG_VOLUME_PATH: lambda s, v, _: s.config_volume == relative(s.sandbox, v),
    contract.ENV_USER: lambda s, v, _: elasticsearch_user(s) == v,
    # The passwords stay out of Elasticsearch's environment (they go through the keystore).
    contract.ENV_CERTIFICATES_PASSWORD: lambda s, v, _: (
        s.certificates_password == v and contract.ENV_CERTIFICATES_PASSWORD not in s.child_env
    ),
    contract.ENV_ELASTIC_PASSWORD: lambda s, v, _: (
        s.elastic_password == v and contract.ENV_ELASTIC_PASSWORD not in s.child_env
    ),
}


def test_every_variable_the_scheduler_writes_is_in_the_contract(tmp_path: Path) -> None:
    written: set[str] = set()
    for task in tasks(tmp_path):
        env = environment(task)
        names = contract_names(env)
        assert names <= contract.SCHEDULER_ENV, names - contract.SCHEDULER_ENV
        assert env[contract.ENV_CONTRACT_VERSION] == str(contract.CONTRACT_VERSION)
        written |= names
    # The tasks above use the whole contract, so the round trip below covers all of it.
    assert written == contract.SCHEDULER_ENV
    assert set(READ_BACK) == contract.SCHEDULER_ENV


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_the_executor_reads_back_every_value_the_scheduler_wrote(tmp_path: Path, index: int) -> None:
    task = tasks(tmp_path)[index]
    env = environment(task)
    settings = NodeSettings.from_task(task, {"MESOS_SANDBOX": str(tmp_path / "sandbox")})
    assert settings.task_id == task["task_id"]["value"]
    wrong = [name for name in contract_names(env) if not READ_BACK[name](settings, env[name], env)]
    assert wrong == []


def test_an_environment_without_a_contract_version_is_contract_1() -> None:
    assert contract.executor_contract({}) == 1
    assert contract.executor_contract({contract.ENV_CONTRACT_VERSION: "2"}) == 2


def literals_naming_the_contract(path: Path) -> list[str]:
    """String literals (docstrings aside) that spell a contract variable instead of importing its name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and ("ELASTICSEARCH_" in node.value or contract.ENV_ELASTIC_PASSWORD in node.value)
    ]


def test_both_sides_take_every_contract_name_from_the_contract_module() -> None:
    root = Path(__file__).resolve().parents[2] / "es_framework"
    sources = [*sorted((root / "executor").glob("*.py")), root / "core" / "task_builder.py"]
    assert [hit for path in sources for hit in literals_naming_the_contract(path)] == []
