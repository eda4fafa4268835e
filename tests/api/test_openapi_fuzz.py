"""schemathesis over the service's own OpenAPI document, against a real `ingestq serve`: for every operation,
generated requests (valid and invalid) never get a 5xx, and every response matches the documented schema.
Bounded (a few examples per operation) so that it fits `make test`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from service import serving

# `POST /v1/process` drains the queue for up to its budget: generated budgets would make the run minutes
# long; tests/api covers it with real workers.
# The event streams (`/v1/events`, `/v1/jobs/{job_id}/events`) never end, so a response body cannot be read
# and validated: tests/api/test_events_api.py covers their 401, 404, 422 and 503 answers.
EXCLUDED = ("/v1/process", "/v1/events", "/v1/jobs/{job_id}/events")
EXAMPLES = 8
# What the issue asks: no 5xx, and responses as documented. (Not "every schema-valid request is accepted":
# a kind is a free string in the schema, yet only the service's registered kinds are accepted, on purpose.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_no_server_error_and_responses_match_the_schema(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'q.db'}", tmp_path / "serve.log") as service:
        schema = schemathesis.openapi.from_url(service.url + "/openapi.json")
        operations: list[Any] = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        checked = [op for op in operations if op.path not in EXCLUDED]
        assert len(checked) >= 5, [op.label for op in operations]  # the document lists the API
        for operation in checked:
            _fuzz(operation)
        assert service.process.poll() is None, service.logged()


def _fuzz(operation: Any) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30)

    try:
        run()
    except Exception as exc:
        raise AssertionError(f"{operation.label}: {exc}") from exc
