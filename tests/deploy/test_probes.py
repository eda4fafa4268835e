"""The manifests' containers as local processes: the exact arguments after the image's entry point
(`ingestq`), the environment the Dockerfile, ConfigMap and Secret give them, and the probe paths and
ports they name; each probe must answer as the manifest expects.

Substituted, and only these: the database URL (a SQLite file here instead of PostgreSQL), the Secret's
placeholder tokens (too short on purpose) by real ones, bind addresses (127.0.0.1 instead of 0.0.0.0)
and ports (free local ones instead of 8000/9091). For the database outage, the worker also gets
INGESTQ_SQLITE_BUSY_TIMEOUT_MS=50 (a locked file fails fast instead of waiting 10 s) and
INGESTQ_LEASE_SECONDS=3 (readiness turns within a lease; the ConfigMap's 15 s would make the test wait
that long). The outage is played by another process holding SQLite's write lock: the worker
stays live (200 on its liveness path) and turns unready (503 on its readiness path), as in
tests/acceptance/test_worker_http.py."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import apsw
import httpx
import pytest
from manifests import (
    BASE,
    COMPONENTS,
    Container,
    compose,
    container_of,
    dockerfile,
    find,
    resources,
)

pytestmark = pytest.mark.timeout(180)

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(url, timeout=3, headers=headers).status_code
    except httpx.TransportError:
        return 0


def _answers(url: str, status: int) -> Callable[[], bool]:
    return lambda: _status(url) == status


def _until(check: Callable[[], bool], what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    ports: dict[int, int]  # the manifest's port -> the local one
    env: dict[str, str]
    log: Path

    def url(self, path: str, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


ADMIN_TOKEN = secrets.token_hex(16)
READ_TOKEN = secrets.token_hex(16)
PLACEHOLDER = "CHANGE-ME"


def _environment(
    declared: dict[str, str], db_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """This machine's environment without its INGESTQ_* settings (the reserved INGESTQ_TEST_* stay),
    then the image's ENV, then the container's, with the database and the placeholder tokens
    substituted."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_") or k.startswith("INGESTQ_TEST_")
    }
    env.update(dockerfile().env())
    env.update(declared)
    env["INGESTQ_DATABASE_URL"] = db_url
    if "INGESTQ_API_TOKENS" in env:
        assert env["INGESTQ_API_TOKENS"] == f"admin:{PLACEHOLDER},read:{PLACEHOLDER}"
        env["INGESTQ_API_TOKENS"] = f"admin:{ADMIN_TOKEN},read:{READ_TOKEN}"
    env.update(extra or {})
    return env


def _start(name: str, args: list[str], env: dict[str, str], ports: list[int], workdir: Path) -> Running:
    """`ENTRYPOINT + args` with 0.0.0.0 bound to 127.0.0.1 and each declared port on a free one."""
    (entry,) = dockerfile().exec_form("ENTRYPOINT")
    mapped = {port: _free_port() for port in ports}
    local: list[str] = []
    for previous, arg in zip(["", *args], args, strict=False):
        if arg == "0.0.0.0":
            arg = "127.0.0.1"
        elif previous in ("--port", "--http-port"):
            arg = str(mapped[int(arg)])
        local.append(arg)
    log = workdir / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(BIN / entry), *local], stdout=out, stderr=out, env=env, cwd=workdir)
    return Running(name, proc, mapped, env, log)


def _stop(running: Running) -> int:
    if running.proc.poll() is None:
        running.proc.send_signal(signal.SIGTERM)
    try:
        return running.proc.wait(60)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        raise


def _startup_budget(container: Container) -> float:
    spec = container.probe_specs["startupProbe"]
    return float(spec["periodSeconds"] * spec["failureThreshold"])


def _assert_probes_pass(running: Running, container: Container) -> None:
    """The startup probe passes within its budget (period x failureThreshold); then readiness and
    liveness answer 200."""
    path, port = container.probes["startupProbe"]
    _until(
        lambda: _status(running.url(path, port)) == 200 or running.proc.poll() is not None,
        f"{running.name} startup probe {path}",
        _startup_budget(container),
    )
    assert running.proc.poll() is None, running.logs()
    for kind in ("readinessProbe", "livenessProbe"):
        url = running.url(*container.probes[kind])
        _until(_answers(url, 200), f"{running.name} {kind} {url}", 30)


def _start_smoke(folder: Path) -> subprocess.Popen[str]:
    """The Dockerfile's smoke step as a shell command here, with the image's ENV and the final stage's
    build arguments in its environment as `docker build` gives them, and /tmp replaced by `folder`."""
    docker = dockerfile()
    (step,) = [r for r in docker.final("RUN") if "ingestq ingest smoke.md --wait" in r]
    env = _environment(docker.env(), "")
    del env["INGESTQ_DATABASE_URL"]  # the step sets its own
    env.update(dict(a.partition("=")[::2] for a in docker.final("ARG")))
    env["HOME"] = str(folder)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    folder.mkdir()
    return subprocess.Popen(
        ["bash", "-c", step.replace("/tmp", str(folder))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@dataclass
class Stack:
    tmp: Path
    db: Path
    api: Running
    api_container: Container
    worker: Running
    worker_container: Container
    single: Running
    smoke: subprocess.Popen[str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("deploy")
    docs = resources(BASE)
    _, api_c = container_of(docs, "ingestq-api")
    _, worker_c = container_of(docs, "ingestq-worker")
    db = tmp / "k8s.db"
    url = f"sqlite:///{db}"
    started: list[Running] = []
    smoke = _start_smoke(tmp / "smoke")  # meanwhile: it loads the model as the worker does
    try:
        api = _start("api", api_c.args, _environment(api_c.env, url), list(api_c.ports.values()), tmp)
        started.append(api)
        # compose's single container (serve --with-worker on SQLite), as written but for the volume path
        sqlite = compose()["services"]["sqlite"]
        single_env = {k: str(v) for k, v in sqlite["environment"].items()}
        single_env["INGESTQ_API_TOKENS"] = api_c.env["INGESTQ_API_TOKENS"]  # ${...} in compose
        single_db = f"sqlite:///{tmp / 'single' / 'ingestq.db'}"
        (tmp / "single").mkdir()
        single = _start("single", sqlite["command"], _environment(single_env, single_db), [8000], tmp)
        started.append(single)
        # the worker starts once the API has applied the migrations (on PostgreSQL an advisory lock
        # orders concurrent start-ups; two processes migrating one fresh SQLite file are not the case
        # under test here)
        _assert_probes_pass(api, api_c)
        extra = {"INGESTQ_SQLITE_BUSY_TIMEOUT_MS": "50", "INGESTQ_LEASE_SECONDS": "3"}
        worker = _start(
            "worker",
            worker_c.args,
            _environment(worker_c.env, url, extra),
            list(worker_c.ports.values()),
            tmp,
        )
        started.append(worker)
        yield Stack(tmp, db, api, api_c, worker, worker_c, single, smoke)
    finally:
        if smoke.poll() is None:
            smoke.kill()
            smoke.communicate()
        codes = {r.name: _stop(r) for r in started}
        logs = {r.name: r.logs() for r in started}
    # A worker exits 0 after its grace. uvicorn (`serve`) shuts down cleanly, then re-raises the SIGTERM it
    # caught, so here it ends by that signal, after "Application shutdown complete".
    for name, code in codes.items():
        clean = code == 0 or (code == -signal.SIGTERM and "Application shutdown complete" in logs[name])
        assert clean, (name, code, logs[name])


def test_api_probes_answer_as_the_manifest_expects(stack: Stack) -> None:
    _assert_probes_pass(stack.api, stack.api_container)
    port = stack.api_container.ports["http"]
    # /metrics wants a token: the ServiceMonitor's (the read token; a placeholder in the file) is
    # accepted, none is refused
    secret = find(resources(COMPONENTS["servicemonitor"]), "Secret", "ingestq-metrics-token")
    assert secret["stringData"]["token"] == PLACEHOLDER
    token = READ_TOKEN
    assert _status(stack.api.url("/metrics", port), token) == 200
    assert _status(stack.api.url("/metrics", port)) == 401


def _health_check(command: list[str], env: dict[str, str], running: Running) -> int:
    """A HEALTHCHECK / compose `healthcheck.test` command, its HEALTHCHECK_URL's port mapped to the
    process's local one."""
    declared = env["HEALTHCHECK_URL"]
    port = int(declared.split(":")[2].split("/")[0])
    local = {**running.env, "HEALTHCHECK_URL": declared.replace(f":{port}/", f":{running.ports[port]}/")}
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]], env=local, capture_output=True, timeout=30
    ).returncode


def _passes(command: list[str], env: dict[str, str], running: Running) -> Callable[[], bool]:
    return lambda: _health_check(command, env, running) == 0


def test_the_health_checks_pass(stack: Stack) -> None:
    """The image's HEALTHCHECK (its default HEALTHCHECK_URL: the API) and compose's healthchecks, with
    each service's HEALTHCHECK_URL, against the processes; a wrong path fails."""
    docker = dockerfile()
    (health,) = docker.final("HEALTHCHECK")
    image_check = json.loads(health.split("CMD", 1)[1])
    assert _health_check(image_check, docker.env(), stack.api) == 0
    services = compose()["services"]
    for name, running in (("api", stack.api), ("worker", stack.worker), ("sqlite", stack.single)):
        command = services[name]["healthcheck"]["test"][1:]  # after "CMD"
        env = {**docker.env(), **{k: str(v) for k, v in services[name]["environment"].items()}}
        _until(_passes(command, env, running), f"{name}'s healthcheck", 60)
    wrong = {"HEALTHCHECK_URL": docker.env()["HEALTHCHECK_URL"].replace("/healthz", "/nothing")}
    assert _health_check(image_check, wrong, stack.api) != 0


def test_the_cronjob_command_drains_through_the_api(stack: Stack) -> None:
    cron = find(resources(COMPONENTS["cronjob"]), "CronJob", "ingestq-process")
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    command: list[str] = container["command"]
    process_url = next(e["value"] for e in container["env"] if e["name"] == "PROCESS_URL")
    local = process_url.replace("http://ingestq-api:8000", f"http://127.0.0.1:{stack.api.ports[8000]}")
    env = {**stack.api.env, "PROCESS_URL": local}  # INGESTQ_API_TOKENS: the same Secret key
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200 "), result.stdout
    assert '"processed":' in result.stdout


def test_worker_probes_and_a_lost_database(stack: Stack) -> None:
    worker, container = stack.worker, stack.worker_container
    _assert_probes_pass(worker, container)
    live_path, live_port = container.probes["livenessProbe"]
    ready_path, ready_port = container.probes["readinessProbe"]
    assert _status(worker.url("/metrics", container.ports["metrics"])) == 200  # the scrape annotations

    blocker = apsw.Connection(str(stack.db))
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        lives: list[int] = []

        def unready() -> bool:
            lives.append(_status(worker.url(live_path, live_port)))
            return _status(worker.url(ready_path, ready_port)) == 503

        _until(unready, "the worker's readiness to fail", within=30)
        assert set(lives) == {200}, lives  # live all along: a restart would not bring the database back
        assert _status(worker.url(live_path, live_port)) == 200
        assert worker.proc.poll() is None, worker.logs()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    _until(lambda: _status(worker.url(ready_path, ready_port)) == 200, "readiness to return", within=30)


def test_single_container_sqlite_profile(stack: Stack) -> None:
    """compose's `sqlite` service: the image's HEALTHCHECK_URL (port 8000 in the container) and the
    API's probe paths answer from one process that also runs a worker."""
    single = stack.single
    _until(
        lambda: _status(single.url("/healthz", 8000)) == 200 or single.proc.poll() is not None,
        "the single container's /healthz",
        90,  # the HEALTHCHECK's start period
    )
    assert single.proc.poll() is None, single.logs()
    _until(lambda: _status(single.url("/readyz", 8000)) == 200, "the single container's /readyz", 30)
    assert dockerfile().env()["HEALTHCHECK_URL"] == "http://127.0.0.1:8000/healthz"


def test_the_image_smoke_step_runs(stack: Stack) -> None:
    """The Dockerfile's build-time smoke test (one document through parser, model and SQLite), started
    with the stack (see `_start_smoke`)."""
    output, _ = stack.smoke.communicate(timeout=180)
    assert stack.smoke.returncode == 0, output
    assert "indexed 1 of 1 documents" in output
    assert not list((stack.tmp / "smoke").glob("smoke.*"))


def test_the_api_refuses_the_placeholder_secret(tmp_path: Path) -> None:
    """Deployed with the Secret as written, the API container exits with one error line, serving
    nothing."""
    _, api_c = container_of(resources(BASE), "ingestq-api")
    env = {**_environment(api_c.env, f"sqlite:///{tmp_path / 'q.db'}")}
    env["INGESTQ_API_TOKENS"] = api_c.env["INGESTQ_API_TOKENS"]  # the placeholders themselves
    (entry,) = dockerfile().exec_form("ENTRYPOINT")
    result = subprocess.run(
        [str(BIN / entry), *api_c.args[:-1], str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "a token must have at least 16 characters" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
