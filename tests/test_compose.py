"""Static checks of the container setup: `compose.yaml`, the service Dockerfiles and the collector config.

No Docker engine is needed. The compose file is validated against the compose-spec schema that
check-jsonschema vendors, and compared with the local launcher (`waypoint_common.fleet`), which is
the source of truth for service names, console scripts and environment variable names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from waypoint_common.fleet import FLEET, TOOL_SERVERS, ServiceSpec, service_environment, url_variable

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
COLLECTOR_CONFIG = ROOT / "otel-collector" / "config.yaml"
INFRASTRUCTURE = {"redis", "otel-collector", "jaeger"}
# Services in a profile of their own, started only when it is asked for.
OPTIONAL = {"ollama": "llm"}
PUBLISHERS = {"orchestrator", "jaeger"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SERVICE_IDS = [s.name for s in FLEET]


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = _load_yaml(COMPOSE_FILE)
    assert "version" not in compose, "the compose spec has no `version:` key"
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whichever of the two compose forms it is written in."""
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _launcher_environment(spec: ServiceSpec) -> set[str]:
    return set(
        service_environment(
            spec,
            host="0.0.0.0",
            port=8000,
            redis_url="x",
            mcp_urls={s.name: "x" for s in TOOL_SERVERS},
            otel_endpoint="x",
            token_file="x",
        )
    )


def _check_jsonschema() -> str:
    beside = Path(sys.executable).parent / "check-jsonschema"
    found = str(beside) if beside.exists() else shutil.which("check-jsonschema")
    assert found is not None, "check-jsonschema is not installed (it is in the dev dependency group)"
    return found


def test_compose_file_follows_the_compose_spec() -> None:
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_launcher_fleet_and_its_infrastructure(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {s.name for s in FLEET} | INFRASTRUCTURE | set(OPTIONAL)


def test_the_local_model_runs_only_in_its_profile(services: dict[str, dict[str, Any]]) -> None:
    for name, profile in OPTIONAL.items():
        assert services[name]["profiles"] == [profile]
    for name in {s.name for s in FLEET} | INFRASTRUCTURE:
        assert "profiles" not in services[name], name
    # No model unless the caller names one: the orchestrator's base URL is empty by default.
    assert services["orchestrator"]["environment"]["WAYPOINT_LLM_BASE_URL"] == "${WAYPOINT_LLM_BASE_URL:-}"


@pytest.mark.parametrize("spec", FLEET, ids=SERVICE_IDS)
def test_compose_sets_the_variables_the_launcher_sets(
    services: dict[str, dict[str, Any]], spec: ServiceSpec
) -> None:
    assert set(_environment(services[spec.name])) == _launcher_environment(spec)


@pytest.mark.parametrize("spec", FLEET, ids=SERVICE_IDS)
def test_compose_environment_points_at_the_fleet(
    services: dict[str, dict[str, Any]], spec: ServiceSpec
) -> None:
    env = _environment(services[spec.name])
    assert env["WAYPOINT_HOST"] == "0.0.0.0"
    assert env["WAYPOINT_PORT"] == "8000"
    assert env["WAYPOINT_ENVIRONMENT"] == "production"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    if spec.tool_server:
        # The MCP SDK answers 421 to a Host header it was not told about.
        assert env["WAYPOINT_ALLOWED_HOSTS"].split(",") == [f"{spec.name}:8000", spec.name]
        assert env["WAYPOINT_FAULTS"].startswith("${"), "faults stay off unless the caller sets them"
    else:
        for tool in TOOL_SERVERS:
            assert env[url_variable(tool)] == f"http://{tool.name}:8000/mcp"
        assert "http://localhost:16686" in env["JAEGER_UI_URL"]


@pytest.mark.parametrize("spec", FLEET, ids=SERVICE_IDS)
def test_every_service_gets_the_service_token_as_a_secret(
    services: dict[str, dict[str, Any]], spec: ServiceSpec
) -> None:
    # The orchestrator sends it, the tool servers require it; as a file, never as a plain variable.
    service = services[spec.name]
    assert service["secrets"] == ["service-token"]
    env = _environment(service)
    assert env["WAYPOINT_SERVICE_TOKEN_FILE"] == "/run/secrets/service-token"
    assert "WAYPOINT_SERVICE_TOKEN" not in env


def test_the_service_token_is_taken_from_the_callers_environment() -> None:
    # Not a file in the repository and not a default: whoever starts the fleet supplies it.
    assert _load_yaml(COMPOSE_FILE)["secrets"] == {"service-token": {"environment": "WAYPOINT_SERVICE_TOKEN"}}
    assert "WAYPOINT_SERVICE_TOKEN" not in {name for spec in FLEET for name in _launcher_environment(spec)}, (
        "the launcher passes the token as a file too"
    )


@pytest.mark.parametrize("spec", FLEET, ids=SERVICE_IDS)
def test_compose_builds_each_service_from_the_workspace_root(
    services: dict[str, dict[str, Any]], spec: ServiceSpec
) -> None:
    build = services[spec.name]["build"]
    assert {k: build[k] for k in ("context", "dockerfile")} == {
        "context": ".",
        "dockerfile": f"{spec.name}/Dockerfile",
    }
    assert (ROOT / build["dockerfile"]).is_file()
    # Base images from variables (mirrors, air-gapped registries), and a CA for TLS proxies.
    assert build["args"] == {
        "PYTHON_IMAGE": "${WAYPOINT_PYTHON_IMAGE:-python:3.11-slim-bookworm}",
        "UV_IMAGE": "${WAYPOINT_UV_IMAGE:-ghcr.io/astral-sh/uv:0.13.8}",
        "COMPANY_CA_PEM": "${WAYPOINT_COMPANY_CA_PEM:-}",
    }
    dockerfile = (ROOT / build["dockerfile"]).read_text()
    # A `# syntax=` parser directive would pull a frontend image from Docker Hub at every build.
    assert re.search(r"^#\s*syntax\s*=", dockerfile, re.MULTILINE) is None
    for arg in build["args"]:
        assert f"ARG {arg}=" in dockerfile, arg


def test_every_infrastructure_image_can_come_from_a_mirror(services: dict[str, dict[str, Any]]) -> None:
    for name, variable in (
        ("redis", "WAYPOINT_REDIS_IMAGE"),
        ("otel-collector", "WAYPOINT_COLLECTOR_IMAGE"),
        ("jaeger", "WAYPOINT_JAEGER_IMAGE"),
        ("ollama", "WAYPOINT_OLLAMA_IMAGE"),
    ):
        assert services[name]["image"].startswith(f"${{{variable}:-"), name


def test_a_service_that_loses_redis_is_unhealthy_within_15_seconds(
    services: dict[str, dict[str, Any]],
) -> None:
    def seconds(text: str) -> float:
        return float(text.removesuffix("s"))

    for spec in FLEET:
        check = services[spec.name]["healthcheck"]
        assert "/readyz" in " ".join(check["test"])
        worst = check["retries"] * (seconds(check["interval"]) + seconds(check["timeout"]))
        assert worst <= 16, spec.name


def test_only_the_api_and_the_jaeger_ui_are_published(services: dict[str, dict[str, Any]]) -> None:
    assert {name for name, service in services.items() if service.get("ports")} == PUBLISHERS
    # On loopback unless the caller says otherwise.
    assert services["orchestrator"]["ports"] == [
        "${WAYPOINT_PUBLISH_ADDRESS:-127.0.0.1}:${WAYPOINT_PORT:-8000}:8000"
    ]
    assert services["jaeger"]["ports"] == ["127.0.0.1:${WAYPOINT_JAEGER_PORT:-16686}:16686"]


@pytest.mark.parametrize("spec", TOOL_SERVERS, ids=[s.name for s in TOOL_SERVERS])
def test_tool_servers_can_be_scaled(services: dict[str, dict[str, Any]], spec: ServiceSpec) -> None:
    # A host port or a fixed container name would make `--scale mcp-flights=3` fail.
    service = services[spec.name]
    assert "ports" not in service
    assert "container_name" not in service
    assert service["networks"] == ["internal"]


def test_networks_keep_the_tool_servers_inside(services: dict[str, dict[str, Any]]) -> None:
    networks = _load_yaml(COMPOSE_FILE)["networks"]
    assert networks["internal"]["internal"] is True
    assert not (networks["edge"] or {}).get("internal"), "edge is where the published ports are"
    for name in {s.name for s in TOOL_SERVERS} | {"redis", "otel-collector"}:
        assert services[name]["networks"] == ["internal"], name
    assert set(services["orchestrator"]["networks"]) == {"internal", "edge"}
    assert set(services["jaeger"]["networks"]) == {"internal", "edge"}


@pytest.mark.parametrize("spec", FLEET, ids=SERVICE_IDS)
def test_python_services_probe_readiness(services: dict[str, dict[str, Any]], spec: ServiceSpec) -> None:
    check = services[spec.name]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert "http://127.0.0.1:8000/readyz" in " ".join(check["test"])
    assert "start_period" in check
    depends_on = services[spec.name]["depends_on"]
    assert isinstance(depends_on, dict), "long-form depends_on, with a condition per dependency"
    assert depends_on["redis"]["condition"] == "service_healthy"
    if not spec.tool_server:
        for tool in TOOL_SERVERS:
            assert depends_on[tool.name]["condition"] == "service_healthy"


def test_every_dependency_condition_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: use long-form depends_on"
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert options["condition"] in CONDITIONS, f"{name} -> {dependency}"
            if options["condition"] == "service_healthy":
                # Otherwise `docker compose up` refuses to start: the dependency never reports healthy.
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}, which has none"


def test_every_service_has_a_memory_limit_and_bounded_logs(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert "mem_limit" in service or "memory" in limits, f"{name} has no memory limit"
        assert service["logging"]["options"]["max-size"], f"{name} logs without a size bound"
    assert "healthcheck" in services["redis"]
    assert "healthcheck" in services["jaeger"]


# --- Dockerfiles -------------------------------------------------------------------------------


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _package_name(spec: ServiceSpec) -> str:
    project = tomllib.loads((ROOT / spec.name / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert spec.command in project["scripts"], (
        f"{spec.name} does not declare the console script {spec.command}"
    )
    name: str = project["name"]
    return name


def _workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return members


@pytest.mark.parametrize("spec", FLEET, ids=SERVICE_IDS)
def test_dockerfile_builds_the_service_and_runs_it_unprivileged(spec: ServiceSpec) -> None:
    instructions = _instructions(ROOT / spec.name / "Dockerfile")
    args = dict(value.split("=", 1) for keyword, value in instructions if keyword == "ARG" and "=" in value)
    assert args["SERVICE_DIR"] == spec.name
    assert args["PACKAGE"] == _package_name(spec)
    assert len([keyword for keyword, _ in instructions if keyword == "FROM"]) >= 2, "multi-stage build"

    final = _final_stage(instructions)
    users = [value for keyword, value in final if keyword == "USER"]
    assert users, "the final stage must name a USER"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"}, users[-1]
    assert group not in {"root", "0"}, users[-1]
    commands = [json.loads(value) for keyword, value in final if keyword == "CMD"]
    assert commands[-1] == [spec.command]
    assert ("EXPOSE", "8000") in final


def test_dockerfiles_differ_only_in_the_service_they_build() -> None:
    # A Dockerfile cannot include another, so five copies are kept identical apart from these lines.
    service_lines = re.compile(r"^(ARG SERVICE_DIR=|ARG PACKAGE=|CMD \[)")
    bodies = {
        spec.name: [
            line
            for line in (ROOT / spec.name / "Dockerfile").read_text(encoding="utf-8").splitlines()
            if not service_lines.match(line)
        ]
        for spec in FLEET
    }
    reference = bodies[FLEET[0].name]
    for name, body in bodies.items():
        assert body == reference, f"{name}/Dockerfile drifted from {FLEET[0].name}/Dockerfile"


def test_dockerfile_copies_every_workspace_manifest() -> None:
    # uv refuses to load a workspace with a member whose pyproject.toml is missing.
    copies = {
        value for keyword, value in _instructions(ROOT / FLEET[0].name / "Dockerfile") if keyword == "COPY"
    }
    for member in _workspace_members():
        assert f"{member}/pyproject.toml {member}/" in copies, member
    assert "pyproject.toml uv.lock ./" in copies


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", "**/.venv", "tests"} <= ignored


# --- Collector ---------------------------------------------------------------------------------


def test_collector_redacts_before_exporting_and_serves_health() -> None:
    config = _load_yaml(COLLECTOR_CONFIG)
    service = config["service"]
    assert service["extensions"] == ["health_check"]
    assert config["extensions"]["health_check"]["endpoint"].endswith(":13133")
    pipelines = service["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline[kind]:
                assert component in config[kind], f"{name} pipeline uses undefined {kind[:-1]} {component}"
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter must come first"
    for name in ("traces", "logs"):
        processors = pipelines[name]["processors"]
        assert processors.index("transform/redact") < processors.index("batch"), name
    assert pipelines["traces"]["exporters"] == ["otlp/jaeger"]
    assert "jaeger:4317" in config["exporters"]["otlp/jaeger"]["endpoint"]
    assert config["exporters"]["prometheus"]["endpoint"].endswith(":8889")


def _ottl_patterns(statement: str) -> tuple[str, str, list[str]]:
    """(function, target, string literals) of an OTTL editor call, its `where` clause left out."""
    call = statement.split(" where ", 1)[0]
    function, _, rest = call.partition("(")
    literals = [re.sub(r"\\(.)", r"\1", s) for s in re.findall(r'"((?:[^"\\]|\\.)*)"', rest)]
    return function, rest.split(",", 1)[0], literals


def _redaction(signal: str) -> list[tuple[str, str, list[str]]]:
    transform = _load_yaml(COLLECTOR_CONFIG)["processors"]["transform/redact"]
    return [_ottl_patterns(s) for group in transform[f"{signal}_statements"] for s in group["statements"]]


def test_collector_removes_personal_attributes() -> None:
    # The regular expressions are RE2 in the collector; those used here mean the same in Python.
    statements = _redaction("trace")
    deleted = {
        lits[0] for fn, target, lits in statements if fn == "delete_key" and target == "span.attributes"
    }
    patterns = [
        re.compile(lits[-1])
        for fn, target, lits in statements
        if fn == "delete_matching_keys" and target == "span.attributes"
    ]

    def removed(key: str) -> bool:
        return key in deleted or any(p.search(key) for p in patterns)

    for key in (
        "waypoint.traveller.name",
        "guest_name",
        "enduser.id",
        "http.request.header.authorization",
        "user.email",
        "waypoint.traveller.email",
        "gen_ai.tool.call.arguments.guests.0.name",
    ):
        assert removed(key), key
    for key in ("waypoint.trip.id", "hotel_name", "gen_ai.tool.name", "http.route"):
        assert not removed(key), key


def test_collector_masks_emails_and_names_in_tool_arguments() -> None:
    statements = _redaction("trace")
    arguments = [
        (re.compile(lits[-2]), lits[-1])
        for fn, target, lits in statements
        if fn == "replace_pattern" and target == 'span.attributes["gen_ai.tool.call.arguments"]'
    ]
    assert len(arguments) == 1
    pattern, replacement = arguments[0]
    # `$${1}` is `${1}` once the collector has expanded its config: Go's regexp.Expand syntax.
    assert replacement == '"$${1}":"[REDACTED]"'
    text = json.dumps(
        {"hotel_name": "Explora", "guests": [{"name": 'Ana "A" Lima', "email": "ana@example.com"}]}
    )
    redacted = json.loads(pattern.sub(r'"\g<1>":"[REDACTED]"', text))
    assert redacted == {"hotel_name": "Explora", "guests": [{"name": "[REDACTED]", "email": "[REDACTED]"}]}

    (email,) = {lits[1] for fn, target, lits in statements if fn == "replace_all_patterns"}
    masked = re.sub(email, "[REDACTED_EMAIL]", "write to ana.lima+trip@mail.example.co.uk today")
    assert masked == "write to [REDACTED_EMAIL] today"
