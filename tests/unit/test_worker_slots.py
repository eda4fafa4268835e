"""The worker's slot bookkeeping on its own: no store, no event loop."""

from __future__ import annotations

import pytest

from factories import make_job
from ingestq.model.job import ClaimRequest, Job, JobState
from ingestq.worker.slots import Slots

REQUEST = ClaimRequest(worker_id="w", limit=10, lease_seconds=15, queues=None, kinds=("a", "b", "ingest"))


def _jobs(*kinds: str) -> list[Job]:
    return [make_job(id=i, kind=kind, state=JobState.RUNNING) for i, kind in enumerate(kinds, 1)]


def test_a_slot_is_taken_until_given_back() -> None:
    slots = Slots(3)
    assert slots.free() == 3
    slots.take("a")
    slots.take("b")
    assert slots.free() == 1
    assert slots.free(freeing=2) == 3  # outcomes committed with the claim free their slots for it
    slots.give_back("a")
    assert slots.free() == 2


def test_without_caps_a_claim_asks_for_every_free_slot() -> None:
    sized = Slots(10).size(REQUEST, 7)
    assert sized is not None
    assert (sized.limit, sized.kinds, sized.kind_limits) == (7, REQUEST.kinds, None)


@pytest.mark.parametrize(
    ("taken", "free", "kinds", "limits"),
    [
        (0, 10, ("a", "b", "ingest"), {"ingest": 2}),  # room 2 < 10 free: limited
        (1, 10, ("a", "b", "ingest"), {"ingest": 1}),
        (2, 10, ("a", "b"), None),  # at its cap: left out
        (0, 2, ("a", "b", "ingest"), None),  # room 2 >= 2 free: no limit needed
    ],
)
def test_a_capped_kind_is_limited_to_its_room(
    taken: int, free: int, kinds: tuple[str, ...], limits: dict[str, int] | None
) -> None:
    slots = Slots(10, {"ingest": 2})
    for _ in range(taken):
        slots.take("ingest")
    sized = slots.size(REQUEST, free)
    assert sized is not None
    assert (sized.limit, sized.kinds, sized.kind_limits) == (free, kinds, limits)


def test_a_reserved_claim_counts_against_the_cap_until_answered() -> None:
    slots = Slots(10, {"ingest": 2})
    first = slots.size(REQUEST, 10)
    assert first is not None
    slots.reserve(first)
    assert slots.free() == 0
    second = slots.size(REQUEST, 5)
    assert second is not None
    assert "ingest" not in (second.kinds or ())
    slots.unreserve(first)
    assert slots.free() == 10
    again = slots.size(REQUEST, 10)
    assert again is not None
    assert again.kind_limits == {"ingest": 2}


def test_an_unavailable_kind_is_left_out_and_none_when_nothing_is_left() -> None:
    slots = Slots(10)
    slots.unavailable["ingest"] = "parser process failed to start"
    sized = slots.size(REQUEST, 10)
    assert sized is not None
    assert sized.kinds == ("a", "b")
    only_ingest = ClaimRequest(worker_id="w", limit=10, lease_seconds=15, queues=None, kinds=("ingest",))
    assert slots.size(only_ingest, 10) is None


def test_more_may_be_due_after_a_full_claim_or_one_a_cap_cut_short() -> None:
    slots = Slots(10, {"ingest": 2})
    full = ClaimRequest(worker_id="w", limit=2, lease_seconds=15, queues=None, kinds=("a",))
    assert slots.maybe_more(full, _jobs("a", "a"))
    assert not slots.maybe_more(full, _jobs("a"))
    capped = slots.size(REQUEST, 10)
    assert capped is not None
    assert slots.maybe_more(capped, _jobs("ingest", "ingest", "a"))
    assert not slots.maybe_more(capped, _jobs("ingest", "a"))
