"""The deployment files are valid: Kubernetes manifests, compose.yaml, the Dockerfile.

Checked offline against published schemas (kubernetes-validate ships the Kubernetes OpenAPI
schemas; check-jsonschema vendors the Compose specification's), then for the properties
docs/deploy.md promises. Nothing here needs docker or a cluster.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
#: The oldest Kubernetes the manifests are meant for, and the newest the validator knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
WORKLOADS = ("Deployment", "StatefulSet", "Job")

Doc = dict[str, Any]


def manifests() -> list[tuple[str, Doc]]:
    """Every Kubernetes object under deploy/k8s, with its file name."""
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


def of_kind(*kinds: str) -> list[Doc]:
    """The objects of the given kinds."""
    return [doc for _, doc in manifests() if doc["kind"] in kinds]


def containers(workload: Doc) -> Iterator[Doc]:
    """The containers of a workload's pod template."""
    spec = workload["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def servers() -> list[Doc]:
    """The workloads that run ``livesell serve``."""
    return [w for w in of_kind(*WORKLOADS) if any(c["args"][0] == "serve" for c in containers(w))]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    found = manifests()
    assert {doc["kind"] for _, doc in found} >= {
        "Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "Ingress", "Job",
    }  # fmt: skip
    for name, doc in found:
        try:
            # strict: unknown fields are errors too (a misspelt probe would be ignored by the API).
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc.message}")


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}
    assert all((K8S / name).exists() for name in listed)


def test_pods_run_unprivileged_and_read_only() -> None:
    for w in of_kind(*WORKLOADS):
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, w["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod.get("automountServiceAccountToken") is False
        for c in containers(w):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"]
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "limits" in c["resources"] and "memory" in c["resources"]["limits"]
            # Secrets come from the Secret, never written into a manifest.
            env = {e["name"]: e for e in c.get("env", [])}
            assert not {"LIVESELL_SECRET", "LIVESELL_DATABASE_URL"} & set(env)
            assert {"secretRef": {"name": "livesell"}} in c["envFrom"]


def test_servers_probe_health_and_drain_within_their_grace_period() -> None:
    found = servers()
    assert {w["kind"] for w in found} == {"Deployment", "StatefulSet"}
    for w in found:
        pod = w["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        port = c["ports"][0]["containerPort"]
        assert port == 8080
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        # preStop, then SIGTERM: aiohttp's 10 s shutdown and a worker's 15 s stop must fit.
        assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 15 + 10


def test_every_server_workload_has_a_disruption_budget() -> None:
    budgets = of_kind("PodDisruptionBudget")
    for w in of_kind("Deployment", "StatefulSet"):
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert w["spec"]["selector"]["matchLabels"].items() <= labels.items()
        covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items()
                    <= labels.items()]  # fmt: skip
        assert len(covering) == 1, w["metadata"]["name"]


def test_each_relay_pod_has_its_own_route_and_advertises_it() -> None:
    (relay,) = of_kind("StatefulSet")
    name, replicas = relay["metadata"]["name"], relay["spec"]["replicas"]
    pods = [f"{name}-{i}" for i in range(replicas)]
    pod = relay["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    advertised = env["LIVESELL_ADVERTISE_URL"]["value"]
    parts = re.fullmatch(r"(https://[^/]+)(/.+)/\$\(POD_NAME\)", advertised)
    assert parts is not None, advertised
    base, prefix = parts.groups()
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    routes: dict[str, str] = {}
    for ingress in of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            assert f"https://{rule['host']}" == base  # the pages' origin: CSP connect-src 'self'
            for p in rule["http"]["paths"]:
                routes[p["path"]] = p["backend"]["service"]["name"]
    for p in pods:
        service = services[p]
        assert service["spec"]["selector"] == {"statefulset.kubernetes.io/pod-name": p}
        assert routes[f"{prefix}/{p}(/|$)(.*)"] == p
    # New offers reach any relay pod; everything else the web tier.
    assert routes["/whip/"] == routes["/whep/"] == name
    assert services[name]["spec"]["selector"] == relay["spec"]["selector"]["matchLabels"]
    assert services[routes["/"]]["spec"]["selector"]["app.kubernetes.io/component"] == "web"


def compose() -> Doc:
    """compose.yaml."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_compose_runs_workers_over_postgres_and_redis_with_aof() -> None:
    services = compose()["services"]
    assert {"livesell", "postgres", "redis", "migrate"} <= set(services)
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    serve = services["livesell"]["command"]
    assert serve[0] == "serve" and int(serve[serve.index("--workers") + 1]) > 1
    env = services["livesell"]["environment"]
    assert env["LIVESELL_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["LIVESELL_SECRET"].startswith("${LIVESELL_SECRET:?")  # refused when unset
    assert services["livesell"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert not any(s.get("privileged") for s in services.values())


def dockerfile() -> DockerfileParser:
    """The parsed Dockerfile."""
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    assert parser.structure, "empty or unreadable Dockerfile"
    return parser


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    """The instructions of the last build stage."""
    structure = parser.structure
    last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    return structure[last_from:]


def test_image_runs_as_a_non_root_user_on_slim_python_311() -> None:
    parser = dockerfile()
    stage = final_stage(parser)
    users = [ins["value"] for ins in stage if ins["instruction"] == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root")
    args = dict(
        ins["value"].split("=", 1) for ins in parser.structure if ins["instruction"] == "ARG"
    )
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert [ins["value"] for ins in parser.structure if ins["instruction"] == "FROM"] == [
        "${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}",
    ]  # fmt: skip
    assert any(ins["instruction"] == "HEALTHCHECK" and "/healthz" in ins["value"] for ins in stage)
    # The runtime stage copies the venv only, never the build context.
    copies = [ins["value"] for ins in stage if ins["instruction"] == "COPY"]
    assert copies and all(c.startswith("--from=build ") for c in copies)


def test_image_installs_every_package_and_no_extras() -> None:
    parser = dockerfile()
    runs = " ".join(ins["value"] for ins in parser.structure if ins["instruction"] == "RUN")
    assert "pip install ." in runs and "[" not in runs.split("pip install", 1)[1].split("&&")[0]
    copied = {ins["value"].split()[0] for ins in parser.structure if ins["instruction"] == "COPY"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= copied, "a package the image would miss"
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert not copied & ignored, "the Dockerfile copies what .dockerignore leaves out"
