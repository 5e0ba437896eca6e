"""The scheduler↔executor contract: what task_builder (and core/node_tls.py for
--elasticsearchSecurity auto) writes is what the executor reads back."""

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
from es_framework.core.credentials import EXECUTOR_CREDENTIALS_PATH, task_token, token_key
from es_framework.core.node_tls import with_node_tls
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


#: What the scheduler writes that is not the executor's to read: Elasticsearch's launcher reads the
#: heap options, and mesos-module-dvdi its volume variables (DVDI_VOLUME_NAME, ..._DRIVER, ...).
NOT_THE_EXECUTORS = ("ES_JAVA_OPTS", "DVDI_VOLUME_")


def contract_names(env: dict[str, str]) -> set[str]:
    """Every variable written, but those of :data:`NOT_THE_EXECUTORS`."""
    return {name for name in env if not name.startswith(NOT_THE_EXECUTORS)}


#: --elasticsearchSecurity auto: the node's material as NodeIssuer (app/node_certificates.py) adds it
#: at launch (placeholders: the executor passes PEM through, tests/executor/test_node_tls_files.py
#: runs real ones).
TLS = {
    "certificate_pem": "-----BEGIN CERTIFICATE-----\nnode\n-----END CERTIFICATE-----\n",
    "ca_pem": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    "key_pem": "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n",
    "password": "generated elastic password",
}


def auto_task() -> dict[str, Any]:
    """An auto node's TaskInfo as the scheduler sends it, on an agent in a zone."""
    zoned = offer(9)
    zoned["domain"] = {"fault_domain": {"region": {"name": "eu-west"}, "zone": {"name": "eu-west-1a"}}}
    built = build_task_info(parse_offer(zoned), 5, config(elasticsearchSecurity="auto"), VIEW, launch_id=LAUNCH)
    return with_node_tls(
        built,
        **TLS,
        task_token=task_token(token_key("the CA's key"), built["task_id"]["value"]),
        credentials_url="http://scheduler.example.com:31100" + EXECUTOR_CREDENTIALS_PATH,
    )


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
        auto_task(),
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
    contract.ENV_SECURITY: lambda s, v, _: (
        (s.security_enabled, s.tls is not None)
        == {
            contract.SECURITY_DISABLED: (False, False),
            contract.SECURITY_ENABLED: (True, False),
            contract.SECURITY_AUTO: (True, True),
        }[v]
    ),
    contract.ENV_CERTIFICATES: lambda s, v, _: s.certificates == relative(s.sandbox, v),
    contract.ENV_DATA_PATH: lambda s, v, _: s.data_path == relative(s.sandbox, v),
    contract.ENV_CONFIG_VOLUME_PATH: lambda s, v, _: s.config_volume == relative(s.sandbox, v),
    contract.ENV_USER: lambda s, v, _: elasticsearch_user(s) == v,
    contract.ENV_NODE_ZONE: lambda s, v, _: s.user_settings.get("node.attr.zone") == v,
    # The passwords stay out of Elasticsearch's environment (they go through the keystore).
    contract.ENV_CERTIFICATES_PASSWORD: lambda s, v, _: (
        s.certificates_password == v and contract.ENV_CERTIFICATES_PASSWORD not in s.child_env
    ),
    contract.ENV_ELASTIC_PASSWORD: lambda s, v, _: (
        s.elastic_password == v and contract.ENV_ELASTIC_PASSWORD not in s.child_env
    ),
    # auto: the node's PEM files reach Elasticsearch as files in its config directory, the token and
    # the URL are the executor's own; none of them is in Elasticsearch's environment.
    contract.ENV_TLS_CERTIFICATE: lambda s, v, _: (
        s.tls is not None and s.tls.certificate == v and contract.ENV_TLS_CERTIFICATE not in s.child_env
    ),
    contract.ENV_TLS_CA: lambda s, v, _: s.tls is not None and s.tls.ca == v and contract.ENV_TLS_CA not in s.child_env,
    contract.ENV_TLS_KEY: lambda s, v, _: (
        s.tls is not None and s.tls.key == v and contract.ENV_TLS_KEY not in s.child_env
    ),
    contract.ENV_TASK_TOKEN: lambda s, v, _: s.task_token == v and contract.ENV_TASK_TOKEN not in s.child_env,
    contract.ENV_CREDENTIALS_URL: lambda s, v, _: (
        s.credentials_url == v and contract.ENV_CREDENTIALS_URL not in s.child_env
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


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4])
def test_the_executor_reads_back_every_value_the_scheduler_wrote(tmp_path: Path, index: int) -> None:
    task = tasks(tmp_path)[index]
    env = environment(task)
    settings = NodeSettings.from_task(task, {"MESOS_SANDBOX": str(tmp_path / "sandbox")})
    assert settings.task_id == task["task_id"]["value"]
    wrong = [name for name in contract_names(env) if not READ_BACK[name](settings, env[name], env)]
    assert wrong == []
    # Whatever the scheduler sends as a SECRET never reaches Elasticsearch's environment.
    secrets = {v["name"] for v in task["executor"]["command"]["environment"]["variables"] if v.get("type") == "SECRET"}
    assert bool(secrets) == (index in (0, 4))  # the secured and the auto task
    assert not secrets & set(settings.child_env)


def test_the_auto_task_uses_the_contract_3_names() -> None:
    env = environment(auto_task())
    assert env[contract.ENV_SECURITY] == contract.SECURITY_AUTO
    assert contract.AUTO_SECURITY_CONTRACT == 3 <= int(env[contract.ENV_CONTRACT_VERSION])
    assert {contract.ENV_TLS_KEY, contract.ENV_TASK_TOKEN, contract.ENV_NODE_ZONE} <= set(env)


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
        and ("ELASTICSEARCH_" in node.value or any(name in node.value for name in contract.SCHEDULER_ENV))
    ]


def test_both_sides_take_every_contract_name_from_the_contract_module() -> None:
    root = Path(__file__).resolve().parents[2] / "es_framework"
    writers = ("task_builder.py", "node_tls.py", "credentials.py")
    sources = [*sorted((root / "executor").glob("*.py")), *(root / "core" / name for name in writers)]
    assert [hit for path in sources for hit in literals_naming_the_contract(path)] == []
