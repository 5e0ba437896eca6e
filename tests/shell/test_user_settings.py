"""--elasticsearchSettingsLocation: fetched once, validated, framework-owned settings dropped loudly."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from es_framework.cli import main
from es_framework.config import resolve_config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.config_record import config_record
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import build_task_info
from es_framework.shell import user_settings
from tests.harness.builders import offer

GOOD = """
indices:
  memory.index_buffer_size: 20%
node.name: my-own-name
http.port: 9999
action.destructive_requires_name: "true"
"""


def test_parse_keeps_the_users_settings_and_warns_for_each_framework_owned_one() -> None:
    settings = user_settings.parse(GOOD, "es.yml")
    assert dict(settings.values) == {
        "indices.memory.index_buffer_size": "20%",
        "action.destructive_requires_name": "true",
    }
    owned = [w for w in settings.warnings if "es-mesos sets it" in w]
    assert len(owned) == 2 and any("[node.name]" in w for w in owned) and any("[http.port]" in w for w in owned)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [unclosed", "not valid YAML"),
        ("http.enabled: true\n", "http.enabled"),
        ("index.number_of_shards: 3\n", "index."),
    ],
)
def test_parse_refuses_what_no_supported_elasticsearch_accepts(text: str, message: str) -> None:
    with pytest.raises(user_settings.UserSettingsError, match=message):
        user_settings.parse(text, "es.yml")


def test_load_from_a_file_and_ship_to_every_executor(tmp_path: Path) -> None:
    path = tmp_path / "es.yml"
    path.write_text(GOOD)
    config = user_settings.load(resolve_config({"elasticsearchSettingsLocation": str(path)}))
    assert config.user_settings["indices.memory.index_buffer_size"] == "20%"
    assert any("[node.name]" in w for w in config.warnings)
    task = build_task_info(parse_offer(offer(1)), 1, config, ClusterView(desired_nodes=3), launch_id="0" * 32)
    env = {v["name"]: v.get("value") for v in task["executor"]["command"]["environment"]["variables"]}
    assert json.loads(env["ELASTICSEARCH_USER_SETTINGS"]) == dict(config.user_settings)
    # The content is part of the fingerprint: another file content marks nodes outdated.
    path.write_text("action.destructive_requires_name: 'false'\n")
    other = user_settings.load(resolve_config({"elasticsearchSettingsLocation": str(path)}))
    assert config_record(config)["fingerprint"] != config_record(other)["fingerprint"]


def test_no_location_no_settings() -> None:
    config = resolve_config({})
    assert user_settings.load(config) is config
    task = build_task_info(parse_offer(offer(1)), 1, config, ClusterView(desired_nodes=3), launch_id="0" * 32)
    names = {v["name"] for v in task["executor"]["command"]["environment"]["variables"]}
    assert "ELASTICSEARCH_USER_SETTINGS" not in names


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, bytes]]]:
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_over_http(served: tuple[str, dict[str, bytes]]) -> None:
    base, files = served
    files["/es.yml"] = GOOD.encode()
    assert "20%" in user_settings.fetch(f"{base}/es.yml")
    with pytest.raises(user_settings.UserSettingsError, match="HTTP 404"):
        user_settings.fetch(f"{base}/missing.yml")
    files["/big.yml"] = b"#" * (user_settings.MAX_BYTES + 1)
    with pytest.raises(user_settings.UserSettingsError, match="limit"):
        user_settings.fetch(f"{base}/big.yml")


def test_a_bad_file_stops_the_command_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "es.yml"
    path.write_text("index.refresh_interval: 5s\n")
    code = main(["config", "--elasticsearchSettingsLocation", str(path)], env={})
    assert code == 2
    assert "index.refresh_interval" in capsys.readouterr().err
    missing = main(["config", "--elasticsearchSettingsLocation", str(tmp_path / "nope.yml")], env={})
    assert missing == 2


def test_a_setting_only_8_refuses_is_a_warning_when_the_major_is_unknown() -> None:
    settings = user_settings.parse("gateway.recover_after_nodes: 2\n", "es.yml")
    assert "gateway.recover_after_nodes" in settings.values
    assert any("Elasticsearch 8 would refuse" in w for w in settings.warnings)
