"""Several hosts on one machine (bench/chaos/multihost.py): real `ingestq worker` processes in two network
namespaces, PostgreSQL listening in a third. Jobs drain across the hosts exactly once; then one host is
cut off for longer than the lease: its jobs are rescued by the other host, and when its link returns its
late outcomes are refused by the fence (owner and attempt). The namespaces are removed even on failure.
The larger run and its figures: `python -m bench.chaos multi-host`, docs/reliability.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.chaos.multihost import HostPlan, run_multi_host
from bench.chaos.netns import probe_netns

pytestmark = pytest.mark.slow


def _logs(root: Path) -> str:
    return "\n".join(
        f"--- {p.parent.name}\n{p.read_text(errors='replace')[-2000:]}"
        for p in sorted(root.glob("*/worker.log"))
    )


async def test_jobs_drain_across_hosts_once_and_a_cut_off_hosts_late_writes_are_fenced(
    tmp_path: Path,
) -> None:
    reason = probe_netns()
    if reason is not None:
        pytest.skip(f"needs network namespaces: {reason}")
    plan = HostPlan(
        exactly_once_jobs=200,
        cut_jobs=150,
        seconds=0.1,
        per_host=1,
        concurrency=4,
        lease=2.5,
        timeout=120,
        refusal_within=60,
    )
    res = await run_multi_host(plan, tmp_path)
    failed = [check for check, ok in res.checks.items() if not ok]
    assert not failed, f"{failed}\n{res.recovery}\n{res.figures}\n{res.extra}\n{_logs(tmp_path)}"
    assert res.extra["rescued"] > 0
    assert res.extra["refused"] > 0
