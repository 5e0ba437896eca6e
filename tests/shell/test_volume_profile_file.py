"""``--volumeProfileFile`` read at start, and every profile choice checked there."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from es_framework.config import ConfigError
from es_framework.core.volume_profiles import table_for, volume_specs
from es_framework.shell import volume_profile_file
from es_framework.shell.volume_profile_file import VolumeProfileFileError, load
from tests.harness.builders import config

YAML = """\
drivers:
  rexray:
    profiles:
      platinum:
        description: io1, 10000 IOPS
        options: {volumetype: io1, encrypted: true}
        config: {size: 4, iops: 200}
        data: {size: 500, iops: 10000}
  pxd:
    options: {repl: int}
    profiles:
      gold: {options: {repl: 3}}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def problems(**flags: str) -> tuple[str, ...]:
    with pytest.raises(VolumeProfileFileError) as caught:
        load(config(**flags))
    return caught.value.problems


def test_yaml_file_fills_the_tables(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles.yaml", YAML)
    loaded = load(config(externalVolumeDriver="rexray", volumeProfile="data=platinum", volumeProfileFile=path))
    assert set(loaded.volume_profiles) == {"rexray", "pxd"}
    assert "platinum" in table_for(loaded).profiles
    assert dict(volume_specs(loaded, 1)[1].options) == {
        "volumetype": "io1",
        "encrypted": "true",
        "size": "500",
        "iops": "10000",
    }


def test_json_file_is_read_as_json(tmp_path: Path) -> None:
    document = {"drivers": {"pxd": {"profiles": {"gold": {"data": {"repl": 3}}}}}}
    path = write(tmp_path, "profiles.json", json.dumps(document))
    loaded = load(config(externalVolumeDriver="pxd", volumeProfile="data=gold", volumeProfileFile=path))
    assert volume_specs(loaded, 2)[1].options == (("repl", "3"),)


def test_without_a_driver_nothing_is_read(tmp_path: Path) -> None:
    c = config()
    assert load(c) is c


def test_without_a_file_the_choice_is_still_checked() -> None:
    (problem,) = problems(externalVolumeDriver="local", volumeProfile="data=gold")
    assert problem.startswith("--volumeProfile data=gold: local has no profile 'gold'")


def test_errors_are_config_errors_that_name_flag_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "drivers:\n  rexray:\n    profiles:\n      g: {data: {snapshot: daily}}\n")
    with pytest.raises(ConfigError) as caught:
        load(config(externalVolumeDriver="rexray", volumeProfileFile=path))
    (problem,) = caught.value.problems
    assert problem.startswith(f"--volumeProfileFile {path}: drivers.rexray.profiles.g.data: option 'snapshot'")
    assert "invalid configuration" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.yaml", None, "cannot read it"),
        ("bad.yaml", "drivers: [\n", "not YAML"),
        ("bad.json", "{", "not JSON"),
        ("latin1.yaml", b"drivers: {\xe9: {}}", "not a UTF-8 text file"),
        ("empty.yaml", "", "the file must be a mapping"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str | bytes | None, expected: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    (problem,) = problems(externalVolumeDriver="rexray", volumeProfileFile=str(path))
    assert problem.startswith(f"--volumeProfileFile {path}: ") and expected in problem


def test_a_huge_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volume_profile_file, "MAX_BYTES", 10)
    path = write(tmp_path, "p.yaml", YAML)
    (problem,) = problems(externalVolumeDriver="rexray", volumeProfileFile=path)
    assert "over the 10 limit" in problem


def test_overrides_are_logged_once_and_warnings_added(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="es_framework.shell.volume_profile_file")
    loaded = load(
        config(externalVolumeDriver="rexray", volumeProfile="data=gold", externalVolumeOptions="size=200,fsType=xfs")
    )
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "storage profiles config=default, data=gold of driver rexray (table rexray)"
    assert lines[1:] == [
        "--externalVolumeOptions size=200 overrides size=100 of storage profile 'gold' for every data volume"
    ]
    assert any(w.startswith("--externalVolumeOptions fsType=xfs: not an option") for w in loaded.warnings)
