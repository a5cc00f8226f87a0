"""The Kubernetes manifests (`deploy/k8s/`): valid against the Kubernetes schemas, and the same
fleet as compose and the launcher (services, variables, probes), locked down as they should be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from waypoint_common.fleet import FLEET, TOOL_SERVERS

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
SERVICE_NAMES = {s.name for s in FLEET}


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in kustomization()["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return services


def test_every_manifest_is_listed_and_every_listed_one_exists() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "otel-collector-config.yaml"}
    assert listed == on_disk
    assert len(documents()) >= 20


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_resource_is_valid_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_manifests_run_the_compose_fleet() -> None:
    deployments = set(of_kind("Deployment"))
    assert deployments == SERVICE_NAMES | {"otel-collector"}
    assert deployments <= set(compose_services())  # Redis and Jaeger are yours on Kubernetes


@pytest.mark.parametrize("name", sorted(SERVICE_NAMES))
def test_each_service_gets_the_variables_compose_gives_it(name: str) -> None:
    env = {e["name"] for e in container(of_kind("Deployment")[name])["env"]}
    assert env == set(compose_services()[name]["environment"])


@pytest.mark.parametrize("name", sorted(SERVICE_NAMES))
def test_each_service_is_probed_as_compose_probes_it(name: str) -> None:
    spec = container(of_kind("Deployment")[name])
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "/readyz" in " ".join(compose_services()[name]["healthcheck"]["test"])
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"http": 8000}


@pytest.mark.parametrize("name", sorted(set(of_kind("Deployment"))))
def test_each_pod_is_locked_down_and_sized(name: str) -> None:
    deployment = of_kind("Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    spec = container(deployment)
    security = spec["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] >= 10000
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    assert set(spec["resources"]["requests"]) == {"cpu", "memory"}
    assert spec["resources"]["limits"]["memory"] == spec["resources"]["requests"]["memory"]
    assert pod["automountServiceAccountToken"] is False


def test_tool_servers_are_headless_autoscaled_and_kept_available() -> None:
    services, scalers, budgets = (
        of_kind("Service"),
        of_kind("HorizontalPodAutoscaler"),
        of_kind("PodDisruptionBudget"),
    )
    for spec in TOOL_SERVERS:
        assert services[spec.name]["spec"]["clusterIP"] == "None", spec.name  # every pod's address
        assert scalers[spec.name]["spec"]["scaleTargetRef"]["name"] == spec.name
        assert scalers[spec.name]["spec"]["minReplicas"] >= 2
        assert budgets[spec.name]["spec"]["minAvailable"] == 1
    assert "clusterIP" not in services["orchestrator"]["spec"]
    assert "orchestrator" in budgets


def test_tool_servers_accept_only_the_orchestrator() -> None:
    policies = of_kind("NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    tools = policies["tool-servers-from-the-orchestrator"]["spec"]
    [selector] = tools["podSelector"]["matchExpressions"]
    assert set(selector["values"]) == {s.name for s in TOOL_SERVERS}
    [rule] = tools["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "orchestrator"}}}]


def test_the_collector_runs_the_same_config_as_in_compose() -> None:
    assert (K8S / "otel-collector-config.yaml").read_text() == (
        ROOT / "otel-collector" / "config.yaml"
    ).read_text()
    [generated] = kustomization()["configMapGenerator"]
    assert generated["files"] == ["config.yaml=otel-collector-config.yaml"]


def test_secrets_are_referenced_never_written() -> None:
    assert of_kind("Secret") == {}
    for name in SERVICE_NAMES:
        env = {e["name"]: e for e in container(of_kind("Deployment")[name])["env"]}
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "waypoint-redis"
        volumes = {v["name"]: v for v in of_kind("Deployment")[name]["spec"]["template"]["spec"]["volumes"]}
        assert volumes["service-token"]["secret"]["secretName"] == "waypoint-service-token"
