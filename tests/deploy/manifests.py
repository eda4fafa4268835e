"""Reading the deployment artefacts in deploy/: kustomize resources (without kubectl), the compose file
and the Dockerfile, into plain data the deploy tests check and run."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
COMPONENTS = {name: K8S / "components" / name for name in ("cronjob", "servicemonitor")}
OVERLAY = K8S / "overlays" / "example"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

Doc = dict[str, Any]


def load_all(path: Path) -> list[Doc]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert all(isinstance(doc, dict) for doc in docs), path
    return docs


def resources(folder: Path) -> list[Doc]:
    """The documents of a kustomization's or component's `resources` (files and folders, recursively),
    plus its components' ones: what `kubectl kustomize` renders, before its transformers run."""
    (kustomization,) = load_all(folder / "kustomization.yaml")
    docs: list[Doc] = []
    for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
        target = (folder / entry).resolve()
        docs.extend(resources(target) if target.is_dir() else load_all(target))
    return docs


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def settings_of(docs: list[Doc]) -> dict[str, str]:
    """The ConfigMap's data and the Secret's stringData: what the containers' envFrom loads."""
    config = find(docs, "ConfigMap", "ingestq-settings")["data"]
    secret = find(docs, "Secret", "ingestq-secrets")["stringData"]
    return {**config, **secret}


@dataclass
class Container:
    """One container as a process: arguments after the image's entry point, environment, named ports
    and the probes' (path, port) by kind."""

    name: str
    args: list[str]
    env: dict[str, str]
    ports: dict[str, int]
    probes: dict[str, tuple[str, int]] = field(default_factory=dict)
    probe_specs: dict[str, Doc] = field(default_factory=dict)


def container_of(docs: list[Doc], deployment: str) -> tuple[Doc, Container]:
    """The pod spec of a Deployment and its only container, with envFrom and env resolved against the
    ConfigMap and Secret in `docs`."""
    pod = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    (spec,) = pod["containers"]
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(find(docs, "Secret", source["secretRef"]["name"])["stringData"])
    for var in spec.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = find(docs, "Secret", ref["name"])["stringData"][ref["key"]]
    ports = {p["name"]: int(p["containerPort"]) for p in spec.get("ports", [])}
    container = Container(spec["name"], [str(a) for a in spec.get("args", [])], env, ports)
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        if kind in spec:
            get = spec[kind]["httpGet"]
            port = get["port"]
            container.probes[kind] = (get["path"], ports[port] if isinstance(port, str) else int(port))
            container.probe_specs[kind] = spec[kind]
    return pod, container


def compose() -> Doc:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@dataclass
class Dockerfile:
    stages: list[tuple[str, str]]  # (image, stage name)
    instructions: list[tuple[int, str, str]]  # (stage index, instruction, arguments)
    args: dict[str, str]

    def final(self, instruction: str) -> list[str]:
        last = len(self.stages) - 1
        return [a for s, i, a in self.instructions if s == last and i == instruction]

    def env(self) -> dict[str, str]:
        """The final stage's ENV, as `ENV A=1 B=2` lines set them."""
        found: dict[str, str] = {}
        for line in self.final("ENV"):
            for word in shlex.split(line):
                key, _, value = word.partition("=")
                found[key] = value
        return found

    def exec_form(self, instruction: str) -> list[str]:
        (line,) = self.final(instruction)
        value = json.loads(line)
        assert isinstance(value, list), f"{instruction} is not in exec form: {line}"
        return [str(v) for v in value]


def dockerfile() -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped; `${ARG}` in FROM resolved
    from the global ARGs' defaults."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    stages: list[tuple[str, str]] = []
    instructions: list[tuple[int, str, str]] = []
    args: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        instruction, _, rest = line.strip().partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            stages.append((image, words[2] if len(words) == 3 and words[1].upper() == "AS" else ""))
        elif instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            instructions.append((len(stages) - 1, instruction, rest))
    return Dockerfile(stages, instructions, args)
