"""deploy/ without running it: the kustomize tree renders (`kubectl kustomize`, skipped where kubectl is
not installed) and validates against the Kubernetes schemas offline (kubernetes-validate, strict); the
manifests, the compose file and the Dockerfile say what the service needs (grace, PDBs, the CronJob's
route, secrets outside the ConfigMap, settings that exist, pinned images, a non-root user).

The Dockerfile is not built and the compose file not run here (no container engine on this machine):
see docs/deployment.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from manifests import (
    BASE,
    COMPONENTS,
    OVERLAY,
    Doc,
    compose,
    container_of,
    dockerfile,
    find,
    resources,
    settings_of,
)

from ingestq.api.auth import Tokens
from ingestq.errors import ConfigError
from ingestq.settings import Settings

# The oldest Kubernetes release still commonly run, and the newest the package ships schemas for.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
CORE_GROUPS = ("v1", "apps/v1", "batch/v1", "policy/v1")
SECRET_NAMES = ("INGESTQ_DATABASE_URL", "INGESTQ_API_TOKENS", "INGESTQ_EMBEDDER_API_KEY")


def _kustomize(folder: Path) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` not run (the schema checks still run)")
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _validate(doc: Doc) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def _check_servicemonitor_shape(doc: Doc) -> None:
    """The Prometheus Operator's CRD is not in the core schemas: check the fields it needs."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    spec = doc["spec"]
    assert spec["selector"]["matchLabels"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "authorization"}, endpoint
        assert endpoint["path"] == "/metrics"
        assert re.fullmatch(r"\d+s", endpoint["interval"])


@pytest.mark.parametrize("folder", [BASE, OVERLAY], ids=["base", "overlay-example"])
def test_kustomize_renders_what_the_files_hold(folder: Path) -> None:
    rendered = _kustomize(folder)
    names = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    assert names == sorted((d["kind"], d["metadata"]["name"]) for d in resources(folder))
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ingestq"
        if doc["apiVersion"] in CORE_GROUPS:
            _validate(doc)
        else:
            _check_servicemonitor_shape(doc)
    images = [c["image"] for d in rendered if d["kind"] in ("Deployment", "CronJob") for c in _containers(d)]
    assert images
    assert all(re.fullmatch(r".+:\d+\.\d+\.\d+", i) for i in images), images


def _containers(doc: Doc) -> list[Doc]:
    spec = doc["spec"]
    pod = (
        spec["jobTemplate"]["spec"]["template"]["spec"]
        if doc["kind"] == "CronJob"
        else spec["template"]["spec"]
    )
    containers: list[Doc] = pod["containers"]
    return containers


def test_every_document_validates_against_the_kubernetes_schemas() -> None:
    docs = resources(OVERLAY)
    others = [d for d in docs if d["apiVersion"] not in CORE_GROUPS]
    assert [d["kind"] for d in others] == ["ServiceMonitor", "ServiceMonitor"]
    for doc in docs:
        if doc in others:
            _check_servicemonitor_shape(doc)
        else:
            _validate(doc)
    assert others[0] not in resources(BASE)  # the CRD stays out of the base: it applies anywhere


def test_a_schema_violation_is_caught() -> None:
    pod, _ = container_of(resources(BASE), "ingestq-worker")
    broken: dict[str, Any] = json.loads(json.dumps(find(resources(BASE), "Deployment", "ingestq-worker")))
    broken["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 45  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)
    assert pod["terminationGracePeriodSeconds"] == 45


def test_worker_grace_pdbs_and_probes() -> None:
    docs = resources(BASE)
    pod, worker = container_of(docs, "ingestq-worker")
    grace = Settings(shutdown_grace=worker.env["INGESTQ_SHUTDOWN_GRACE"]).shutdown_grace
    assert "--grace" not in worker.args  # the ConfigMap's value is the one in force
    assert pod["terminationGracePeriodSeconds"] > grace
    assert compose()["services"]["worker"]["stop_grace_period"] == f"{pod['terminationGracePeriodSeconds']}s"
    assert worker.probes["livenessProbe"] == ("/healthz", worker.ports["metrics"])
    assert worker.probes["readinessProbe"] == ("/readyz", worker.ports["metrics"])
    annotations = find(docs, "Deployment", "ingestq-worker")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(worker.ports["metrics"])
    assert annotations["prometheus.io/path"] == "/metrics"
    _, api = container_of(docs, "ingestq-api")
    assert api.probes["readinessProbe"][0] == "/readyz"
    assert api.probes["livenessProbe"][0] == "/healthz"
    assert api.probes["startupProbe"][0] == "/healthz"
    for probe_path, _ in api.probes.values():
        assert "get" in _api_paths()[probe_path]
    # liveness gives up later than readiness (a slow database makes a pod unready, never restarted)
    live, ready = api.probe_specs["livenessProbe"], api.probe_specs["readinessProbe"]
    assert (
        live["periodSeconds"] * live["failureThreshold"] > ready["periodSeconds"] * ready["failureThreshold"]
    )
    for name in ("ingestq-api", "ingestq-worker"):
        pdb = find(docs, "PodDisruptionBudget", name)
        labels = find(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert find(docs, "Deployment", name)["spec"]["replicas"] >= 2  # a PDB over one pod blocks drains


def test_settings_are_real_and_secrets_stay_in_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = resources(OVERLAY)
    config = find(docs, "ConfigMap", "ingestq-settings")["data"]
    assert not set(config) & set(SECRET_NAMES)
    assert not any(re.search(r"://[^/]*:[^@/]*@|admin:|read:", v) for v in config.values()), config
    secret = find(docs, "Secret", "ingestq-secrets")["stringData"]
    assert set(secret) == {"INGESTQ_DATABASE_URL", "INGESTQ_API_TOKENS"}
    # the placeholders are too short to be tokens: an API deployed with them does not start
    with pytest.raises(ConfigError, match="at least 16 characters"):
        Tokens.parse(secret["INGESTQ_API_TOKENS"])
    entries = [e.split(":", 1) for e in secret["INGESTQ_API_TOKENS"].split(",")]
    assert [role for role, _ in entries] == ["admin", "read"]
    metrics_token = find(docs, "Secret", "ingestq-metrics-token")["stringData"]["token"]
    assert ["read", metrics_token] in entries  # the ServiceMonitor's token stands for the read token
    # every INGESTQ_* name the manifests and the compose file set is a setting (unknown ones stop ingestq)
    services = compose()["services"]
    envs = [settings_of(docs)] + [services[s]["environment"] for s in ("api", "worker", "sqlite")]
    for env in envs:
        for key in [k for k in os.environ if k.startswith("INGESTQ_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, re.sub(r"\$\{[^}]*\}", "x" * 16, str(value)))
        Settings()


def _api_paths() -> dict[str, dict[str, Any]]:
    from ingestq.api.app import create_app

    paths: dict[str, dict[str, Any]] = create_app(Settings()).openapi()["paths"]
    return paths


def test_cronjob_calls_the_process_route() -> None:
    from ingestq.api.routes.process import MAX_BUDGET

    cron = find(resources(COMPONENTS["cronjob"]), "CronJob", "ingestq-process")
    (container,) = _containers(cron)
    env = {e["name"]: e for e in container["env"]}
    url = env["PROCESS_URL"]["value"]
    match = re.fullmatch(r"http://ingestq-api:(\d+)(/v1/process)\?budget=(\d+)", url)
    assert match, url
    port, path, budget = int(match[1]), match[2], float(match[3])
    service = find(resources(BASE), "Service", "ingestq-api")
    assert port == service["spec"]["ports"][0]["port"]
    script = container["command"][2]
    assert "httpx.post(" in script
    assert "post" in _api_paths()[path]
    assert budget <= MAX_BUDGET
    job = cron["spec"]["jobTemplate"]["spec"]
    assert budget < job["activeDeadlineSeconds"]
    timeout = re.search(r"timeout=(\d+)", script)
    assert timeout is not None
    assert budget < float(timeout[1]) < job["activeDeadlineSeconds"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert env["INGESTQ_API_TOKENS"]["valueFrom"]["secretKeyRef"]["name"] == "ingestq-secrets"


def test_dockerfile_structure() -> None:
    docker = dockerfile()
    names = [name for _, name in docker.stages]
    assert names == ["builder", "runtime"]
    for image, _ in docker.stages:
        assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", image), image
        assert "latest" not in image
    runs = " ".join(docker.final("RUN"))
    assert re.search(r"pip install \"torch==\$\{TORCH_VERSION\}\" --index-url", runs)
    final_args = dict(a.partition("=")[::2] for a in docker.final("ARG"))
    assert final_args["TORCH_VERSION"] == "2.13.0"
    assert final_args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    for line in docker.final("RUN"):
        for spec in re.findall(r"pip install ([^;&]+)", line):
            assert "torch" not in spec or "==" in spec, line
    assert not [a for a in docker.final("ARG") if a.startswith("INGESTQ_")]  # RUN sees build args
    assert "libgl1" in runs  # opencv (the ocr extra) needs the system's libGL
    assert any("ingestq ingest smoke.md --wait" in r for r in docker.final("RUN"))
    assert any(a.startswith("--from=builder ") for _, i, a in docker.instructions if i == "COPY")
    (user,) = docker.final("USER")
    assert user.split(":")[0] not in ("root", "0")
    env = docker.env()
    assert env["HF_HUB_OFFLINE"] == "1"
    assert not [k for k in env if k.startswith("INGESTQ_")]  # an unknown one would stop ingestq
    assert docker.exec_form("ENTRYPOINT") == ["ingestq"]
    assert docker.exec_form("CMD") == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    (health,) = docker.final("HEALTHCHECK")
    command = json.loads(health.split("CMD", 1)[1])
    assert command[0] == "python"
    assert "HEALTHCHECK_URL" in command[2]
    assert env["HEALTHCHECK_URL"].endswith(":8000/healthz")


def test_compose_structure() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"postgres", "api", "worker", "sqlite"}
    assert re.fullmatch(r"pgvector/pgvector:[\d.]+-pg\d+", services["postgres"]["image"])
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["sqlite"]["profiles"] == ["sqlite"]
    assert "profiles" not in services["api"]
    assert "profiles" not in services["worker"]
    volume = services["sqlite"]["volumes"][0].split(":")
    assert volume[0] in data["volumes"]
    assert services["sqlite"]["environment"]["INGESTQ_DATABASE_URL"] == f"sqlite:///{volume[1]}/ingestq.db"
    assert "--with-worker" in services["sqlite"]["command"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["environment"]["INGESTQ_DATABASE_URL"].startswith("postgresql://")
    docker = dockerfile()
    for name in ("api", "worker", "sqlite"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert re.fullmatch(r"ingestq:\d+\.\d+\.\d+", service["image"])
        assert service["healthcheck"]["test"][1:] == json.loads(
            docker.final("HEALTHCHECK")[0].split("CMD", 1)[1]
        )
    # the compose services run what the Kubernetes containers run
    docs = resources(BASE)
    assert services["api"]["command"] == container_of(docs, "ingestq-api")[1].args == docker.exec_form("CMD")
    assert services["worker"]["command"] == container_of(docs, "ingestq-worker")[1].args
    port = container_of(docs, "ingestq-worker")[1].ports["metrics"]
    assert services["worker"]["environment"]["HEALTHCHECK_URL"] == f"http://127.0.0.1:{port}/healthz"


def test_docker_compose_config_when_available() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("the docker compose plugin is not installed: the YAML structure is checked instead")
    env = {"POSTGRES_PASSWORD": "x" * 16, "INGESTQ_API_TOKENS": "admin:" + "a" * 16, "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [
            docker,
            "compose",
            "-f",
            str(BASE.parents[1] / "compose.yaml"),
            "--profile",
            "sqlite",
            "config",
            "-q",
        ],
        check=True,
        env=env,
        timeout=60,
    )
