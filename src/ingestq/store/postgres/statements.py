"""The queue's statements on PostgreSQL, and the few that are assembled or parameterised in Python: the
claim for a request, the fenced finish-and-claim splice, the outcomes' parameters. Both halves of the
store (queue and index) use them, so they live apart from either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ingestq.model.job import ERROR_HISTORY_LIMIT, ClaimRequest, Outcome, OutcomeKind
from ingestq.store.queries import load_queries

Q = load_queries("ingestq.store.postgres")


def claim_statement(req: ClaimRequest, now: datetime) -> tuple[str, dict[str, Any]]:
    """The claim query for `req` (the one that walks the right index) and its parameters."""
    params: dict[str, Any] = {
        "now": now,
        "limit": req.limit,
        "worker_id": req.worker_id,
        "lease_expires_at": now + timedelta(seconds=req.lease_seconds),
        "kinds": list(req.kinds) if req.kinds is not None else None,
        "paused": list(req.exclude_queues) if req.exclude_queues is not None else None,
        "caps": json.dumps(dict(req.kind_limits)) if req.kind_limits else None,
    }
    if req.queues is None:
        return Q["job_claim"], params
    if len(req.queues) == 1:
        params["queue"] = req.queues[0]
        return Q["job_claim_queue"], params
    params["queues"] = list(req.queues)
    return Q["job_claim_queues"], params


FINISH_AND_CLAIM = {
    Q[name]: Q["job_finish_and_claim"].replace("{finish}", Q["job_finish_many"]).replace("{claim}", Q[name])
    for name in ("job_claim", "job_claim_queue", "job_claim_queues")
}


def finish_params(outcomes: Sequence[Outcome], now: datetime) -> dict[str, Any]:
    """Parameters of job_finish_many (also run by the index store inside its commit transaction): the
    outcomes as one JSON document, keys left out being NULL in SQL."""
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        row: dict[str, Any] = {
            "id": o.job_id,
            "lease_owner": o.lease_owner,
            "attempt": o.attempt,
            "kind": o.kind.value,
        }
        if o.kind is OutcomeKind.SUCCEEDED and o.result is not None:
            row["result"] = o.result
        if o.error is not None:
            row["error"] = o.error
        if o.run_at is not None:
            row["run_at"] = o.run_at.isoformat()
        rows.append(row)
    return {"outcomes": dump_json(rows, "result"), "now": now, "history": ERROR_HISTORY_LIMIT}


def dump_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job {what} is not JSON-serialisable: {exc}") from None
