"""``deploy/``: the compose file, the systemd units and the example environment agree with the
settings and the CLI (every variable they set is a setting, every command they run parses)."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from insider_selling.cli import build_parser
from insider_selling.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SETTINGS = {str(field.validation_alias or name) for name, field in Settings.model_fields.items()}
APP_IMAGE = "insider-selling:local"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == APP_IMAGE}


def parses(argv: list[str]) -> None:
    assert argv[0] == "insider-selling", argv
    build_parser().parse_args(argv[1:])  # SystemExit (a failure) when it does not parse


def test_compose_has_the_real_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"mongo", "redis", "api", "worker"} <= set(services)
    mongo = services["mongo"]
    assert "--replSet" in mongo["command"]
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])  # its init
    assert services["redis"]["healthcheck"]["test"][-1] == "ping"
    apps = app_services(compose)
    assert set(apps) == {"api", "worker"}
    assert apps["api"]["command"][:4] == ["insider-selling", "serve", "--workers", "2"]
    assert apps["worker"]["command"] == ["insider-selling", "worker"]
    for name, svc in apps.items():
        check = " ".join(svc["healthcheck"]["test"])
        assert "/readyz" in check, name
        compile(svc["healthcheck"]["test"][-1], f"{name} healthcheck", "exec")  # the python -c text
        assert svc["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert svc["environment"]["MONGODB_URI"].startswith("mongodb://mongo:27017/")
        assert "replicaSet=rs0" in svc["environment"]["MONGODB_URI"]
        assert svc["ulimits"]["nofile"]["soft"] >= 65536


def test_compose_sets_only_settings_and_runs_commands_that_parse(compose: dict[str, Any]) -> None:
    apps = app_services(compose)
    for name, svc in apps.items():
        unknown = set(svc["environment"]) - SETTINGS
        assert not unknown, f"{name} sets variables that are not settings: {unknown}"
        Settings(**{k: str(v) for k, v in svc["environment"].items()})  # and their values are valid
        parses(svc["command"])


def test_compose_takes_the_webhook_key_from_the_environment(compose: dict[str, Any]) -> None:
    """The secret is never in the file: compose interpolates it and refuses to start without it."""
    for name, svc in app_services(compose).items():
        value = str(svc["environment"]["INSIDER_WEBHOOK_KEY"])
        assert value.startswith("${INSIDER_WEBHOOK_KEY:?"), f"{name} must take INSIDER_WEBHOOK_KEY from the environment"


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("unit", ["insider-selling-api.service", "insider-selling-worker.service"])
def test_systemd_units(unit: str) -> None:
    service = _unit(DEPLOY / unit)["Service"]
    assert int(service["LimitNOFILE"]) >= 65536
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/insider-selling")
    parses(["insider-selling", *argv[1:]])


def test_example_environment_names_only_settings() -> None:
    names = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "insider-selling.env.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert names and set(names) <= SETTINGS


def test_deploy_readme_commands_parse() -> None:
    text = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    commands = [line.split("#")[0] for block in blocks for line in block.splitlines()]
    found = 0
    for line in commands:
        words = shlex.split(line.replace("…", "x"))
        for i, word in enumerate(words):
            if word.endswith("insider-selling") and i + 1 < len(words) and words[i + 1] in ("admin", "serve", "worker"):
                argv = [w for w in words[i + 1 :] if not w.startswith("'")]
                parses(["insider-selling", *[w.rstrip("'") for w in argv]])
                found += 1
    assert found >= 3
    assert "admin bootstrap" in text and "compose.yaml" in text
