"""The README's FastAPI snippet, run as written: the app under uvicorn and an `ingestq worker --app app`,
both real processes; an upload answers 202 with a job that the worker then runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from service import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
INGESTQ = str(Path(sys.executable).parent / "ingestq")


def snippet() -> str:
    text = README.read_text(encoding="utf-8")
    marker = text.index("<!-- snippet: fastapi-mount")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert block is not None, "the README lost its FastAPI snippet"
    return block.group(1)


def test_the_readme_fastapi_snippet_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(snippet(), encoding="utf-8")
    env = {
        **os.environ,
        "INGESTQ_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "app.log"
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
    worker: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/ingestq/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        accepted = httpx.post(base + "/images/7")
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job"]
        queued = httpx.get(f"{base}/ingestq/v1/jobs/{job_id}").json()
        assert (queued["kind"], queued["state"], queued["queue"]) == (
            "app.make_thumbnail",
            "queued",
            "thumbnails",
        )
        with open(log, "ab") as out:
            worker = subprocess.Popen(
                [INGESTQ, "worker", "--app", "app"], cwd=tmp_path, env=env, stdout=out, stderr=out
            )
        done = httpx.get(f"{base}/ingestq/v1/jobs/{job_id}?wait=30&state=queued", timeout=40).json()
        while done["state"] != "succeeded":
            assert time.monotonic() < deadline + 60, (done, log.read_text())
            done = httpx.get(
                f"{base}/ingestq/v1/jobs/{job_id}?wait=10&since={done['version']}", timeout=20
            ).json()
        assert done["result"] == "thumbnails/7.png"
        assert "ingestq_jobs" in httpx.get(base + "/ingestq/metrics").text
    finally:
        for process in (worker, server):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
