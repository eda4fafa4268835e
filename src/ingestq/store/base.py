"""The storage seam: the queue operations the core needs, named after what they do, never SQL.

Both backends (store/sqlite, store/postgres) implement this protocol and pass the one contract suite in
tests/contract. Every method that depends on "now" takes it as an argument so that the caller (and a
test) owns the clock; the store never reads the system time for queue decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from ingestq.model.job import (
    ClaimRequest,
    FinishedBucket,
    HeartbeatReply,
    Job,
    JobFilter,
    JobState,
    NewJob,
    Outcome,
    Progress,
    QueueConfig,
    QueueStats,
    Retention,
    WorkerBeat,
    WorkerInfo,
)
from ingestq.store.webhook_base import WebhookStore

if TYPE_CHECKING:
    # annotations only: a queue-only process never builds the document dataclasses
    from ingestq.model.document import (
        BucketRow,
        ChunkRecord,
        Collection,
        Document,
        DocumentFilter,
        DocumentRef,
        DocumentStatus,
        Hit,
        IdempotentReply,
        IndexWrite,
        SearchQuery,
        Vector,
    )


class ChangeWaiter(Protocol):
    """A private wake-up source for one reader of changes (the service's event feed), apart from the
    worker's `wait_for_jobs` so that neither consumes the other's wake-ups."""

    async def wait(self, max_wait: float) -> bool:
        """Return True when the jobs may have changed, False after `max_wait` seconds without a sign."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    backend: str  # "sqlite" | "postgresql"

    # --- lifecycle and schema ------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect. Raises StoreError with a one-line reason if the database cannot be used."""
        ...

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order; return the versions applied. Safe to run concurrently."""
        ...

    async def schema_version(self) -> tuple[int, int]:
        """(version applied in the database, latest version this code knows). Raises SchemaError when
        the database is newer than the code."""
        ...

    async def queue_schema_missing(self) -> list[int]:
        """The migrations the queue's own tables need that the database lacks (empty: the queue is
        current). Job and worker statements may use any column those add, so a process that does not
        migrate must refuse to start on a non-empty answer."""
        ...

    # --- jobs ------------------------------------------------------------------------------------------
    async def job_insert_many(self, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        """Insert in one transaction, returning one Job per input in input order. A job whose dedupe_key
        matches an unfinished job returns that job instead of inserting. Raises QueueFull (nothing
        inserted) if a queue with a max_depth would exceed it."""
        ...

    async def job_insert_bulk(self, template: NewJob, payloads: Sequence[str], now: datetime) -> list[int]:
        """Insert one job per payload (the text of a JSON object, validated by the caller), each otherwise
        like `template` (which has no dedupe_key), in one transaction; returns the new ids in input order.
        The bulk path: no Job objects are built. Raises QueueFull (nothing inserted) like
        job_insert_many."""
        ...

    async def job_get(self, job_id: int) -> Job | None: ...

    async def job_list(self, flt: JobFilter) -> list[Job]:
        """Newest first (id descending), keyset-paginated by `before_id`."""
        ...

    async def job_claim(self, req: ClaimRequest, now: datetime) -> list[Job]:
        """Atomically move up to `limit` due queued jobs to running for `req.worker_id`: highest priority
        first, then oldest run_at, then id. Increments attempt, sets lease_expires_at = now + lease. One
        statement: two callers can never receive the same job."""
        ...

    async def job_finish_many(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        """Apply outcomes in one transaction. An outcome applies only if the job is running with the
        same lease_owner and attempt (fencing); returns the ids that applied. FAILED and RETRY append
        `error` to the bounded error history and set last_error."""
        ...

    async def job_finish_and_claim(
        self, outcomes: Sequence[Outcome], claim: ClaimRequest | None, now: datetime
    ) -> tuple[set[int], list[Job]]:
        """The worker's hot path in one transaction (one commit): claim like `job_claim` (nothing when
        `claim` is None), then apply `outcomes` fenced like `job_finish_many`. Returns (ids applied, jobs
        claimed in claim order). The claim runs first, so it never returns a job this call finishes or
        re-queues. All or nothing: if it raises, neither part took effect (unless the commit itself
        succeeded and only the reply was lost, as for `job_claim`)."""
        ...

    async def job_progress(
        self, job_id: int, lease_owner: str, attempt: int, progress: Progress, now: datetime
    ) -> bool:
        """Record progress if the caller still holds the job; False if it does not (fenced)."""
        ...

    async def job_cancel(self, job_id: int, now: datetime) -> Job:
        """queued → cancelled at once; running → cancel_requested (the worker stops at the next stage
        boundary). Finished jobs are returned unchanged. Raises JobNotFound."""
        ...

    async def job_retry(self, job_id: int, now: datetime) -> Job:
        """A person's retry of a failed or cancelled job: queued, due now, at least one attempt left.
        Raises JobNotFound, or InvalidJobState for a queued/running/succeeded job."""
        ...

    async def job_rescue_stale(self, now: datetime) -> list[int]:
        """Running jobs whose lease expired (their worker died or hung): back to queued due now with the
        attempt counted, or failed if no attempt is left. Returns the ids moved."""
        ...

    async def job_position(self, job_id: int, now: datetime) -> int | None:
        """1-based position among due queued jobs of its queue in claim order; None if not queued."""
        ...

    async def job_purge(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        """Delete finished jobs (only states in FINISHED_STATES are accepted). Returns the count."""
        ...

    async def job_purge_count(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        """How many jobs job_purge would delete with these arguments (a dry run: deletes nothing)."""
        ...

    async def job_finished_buckets(self, since: datetime, width: float) -> list[FinishedBucket]:
        """Succeeded and failed jobs per `width`-second bucket from `since` on (empty buckets left out);
        reads only the window (the finished-by-age index), never the whole history."""
        ...

    async def job_prune(self, retention: Retention, now: datetime, limit: int = 10_000) -> int:
        """Retention: delete up to `limit` finished jobs older than their state's retention."""
        ...

    async def stats(self, now: datetime) -> list[QueueStats]: ...

    # --- queues, workers, periodic jobs ---------------------------------------------------------------
    async def queue_configure(self, config: QueueConfig) -> QueueConfig:
        """Set the queue's max_depth (creating its row); its paused state is kept. Returns the row."""
        ...

    async def queue_pause(self, name: str, paused: bool, now: datetime) -> QueueConfig:
        """Pause (paused_at = now, unless already paused) or resume a queue, creating its row; its
        max_depth is kept. Returns the row. Workers stop claiming from a paused queue at their next
        heartbeat: ClaimRequest.exclude_queues, from HeartbeatReply.paused_queues."""
        ...

    async def queue_list(self) -> list[QueueConfig]: ...

    async def worker_heartbeat(self, beat: WorkerBeat, now: datetime) -> HeartbeatReply:
        """Upsert the worker row, extend the leases of `beat.job_ids` it still owns, report lost jobs,
        cancel requests and the paused queues. Also deletes worker rows silent for more than 10 leases."""
        ...

    async def worker_deregister(self, worker_id: str) -> None: ...

    async def worker_list(self, now: datetime) -> list[WorkerInfo]: ...

    async def periodic_enqueue(self, name: str, slot: datetime, job: NewJob, now: datetime) -> Job | None:
        """Insert `job` for the periodic schedule `name` at `slot` unless that slot (or a later one) was
        already enqueued, atomically: however many workers call this for one slot, one job results."""
        ...

    # --- wake-ups --------------------------------------------------------------------------------------
    async def wait_for_jobs(self, max_wait: float) -> None:
        """Return when new jobs may be available (a notification, or a cheap change check), or after
        `max_wait` seconds. Must not busy-wait."""
        ...

    # --- change feed (read-only; the hot path writes nothing for it) -------------------------------------
    async def job_watch(self, after_id: int, finished_since: datetime, limit: int) -> list[Job]:
        """What a change feed diffs: jobs with id > `after_id` (ascending, at most `limit`), the running
        jobs with id <= `after_id`, and the jobs with id <= `after_id` finished at or after
        `finished_since` (each part at most `limit` rows), without `result` and `errors` (left empty).
        Reads indexes of live and recent rows only."""
        ...

    def change_waiter(self) -> ChangeWaiter:
        """A new wake-up source for a change feed (its own LISTEN connection or change-check thread).
        PostgreSQL wakes it on inserts and re-queues only (claims and finishes send no NOTIFY, to keep
        the hot path lean): its reader also polls. SQLite wakes it on every commit by any process."""
        ...


@runtime_checkable
class IndexStore(Protocol):
    """Documents, chunks and vectors (sqlite-vec in the same SQLite file, pgvector HNSW on PostgreSQL).

    Writes that finish an ingestion job take the job's `Outcome` and apply it in the same transaction,
    fenced like `job_finish_many`: a stale worker can neither complete the job nor swap the chunks.
    """

    async def collection_ensure(self, name: str, model_id: str, dimension: int, now: datetime) -> Collection:
        """Create the collection for this model, or return the existing one unchanged (the caller refuses
        a model mismatch with a clear message)."""
        ...

    async def collection_get(self, name: str) -> Collection | None: ...

    async def collection_list(self) -> list[Collection]: ...

    async def blob_put(self, data: bytes, now: datetime) -> str:
        """Store uploaded bytes (content-addressed: sha256 hex, stored once); returns the blob id."""
        ...

    async def blob_put_file(self, file: BinaryIO, now: datetime) -> str:
        """`blob_put` of a file's bytes (read from its start), streamed into the database so that a large
        upload is never held in memory whole; the same content-addressed id as `blob_put`."""
        ...

    async def blob_get(self, blob_id: str) -> bytes | None: ...

    async def document_register(self, ref: DocumentRef, now: datetime) -> Document:
        """Create the document as pending, or mark an existing one pending with the new source/blob
        (its current version stays searchable until the new one is committed)."""
        ...

    async def document_enqueue(
        self, refs: Sequence[DocumentRef], jobs: Sequence[NewJob], now: datetime
    ) -> list[tuple[Document, Job]]:
        """`document_register` of each ref and `job_insert_many` of `jobs` (refs[i]'s job is jobs[i]), in
        one transaction: either the documents are pending with their jobs queued, or nothing changed
        (QueueFull included). One commit where the two steps took one per document plus one for the jobs:
        on PostgreSQL each is a WAL flush that an upload waits for."""
        ...

    async def document_get(self, collection: str, document_id: str) -> Document | None: ...

    async def document_list(self, flt: DocumentFilter) -> list[Document]: ...

    async def document_by_content(self, collection: str, content_hash: str) -> Document | None:
        """The collection's document holding bytes with this sha256: an upload whose latest bytes they are
        (its blob), or else a document from a path or URL whose served version was built from them. The
        first by id if several do; None if none."""
        ...

    async def document_counts(self, collection: str | None) -> dict[DocumentStatus, int]: ...

    async def document_delete(self, collection: str, document_id: str) -> bool:
        """Delete the document, its chunks and vectors. False if it did not exist."""
        ...

    async def document_chunks(
        self, collection: str, document_id: str, with_vectors: bool = False
    ) -> list[ChunkRecord]: ...

    async def document_token_count(self, collection: str, document_id: str) -> int:
        """The tokens of the document's current chunks (0 if none): a status read without the chunks."""
        ...

    async def document_commit(self, write: IndexWrite, outcome: Outcome, now: datetime) -> bool:
        """One transaction: if `outcome` applies (fence), replace the document's chunks and vectors by
        `write.chunks` (version + 1, status indexed, error cleared) and finish the job. False (and nothing
        written) if the fence fails. Requires the collection to exist with `write.model_id`."""
        ...

    async def document_mark(
        self,
        collection: str,
        document_id: str,
        status: DocumentStatus,
        error: str | None,
        outcome: Outcome | None,
        now: datetime,
    ) -> bool:
        """Set status/error (failed, quarantined, or pending again), finishing the job in the same
        transaction when `outcome` is given (fenced; False and nothing written if it does not apply).
        Chunks of the current version are kept."""
        ...

    async def documents_stale(
        self, collection: str, model_id: str, settings_hash: str, limit: int
    ) -> list[Document]:
        """Indexed documents built with another model or other chunker settings (for backfill)."""
        ...

    async def embed_cache_get(self, model_id: str, keys: Sequence[str]) -> dict[str, Vector]: ...

    async def embed_cache_put(self, model_id: str, items: dict[str, Vector], now: datetime) -> None: ...

    async def blob_prune(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` uploaded blobs no document names, stored (or put again) before `before`."""
        ...

    async def embed_cache_prune(self, before: datetime, limit: int = 10_000) -> int:
        """Retention of the embedding cache: delete up to `limit` entries written before `before`."""
        ...

    async def rate_bucket_update(
        self, key: str, update: Callable[[BucketRow | None], BucketRow]
    ) -> BucketRow:
        """Read-modify-write of a shared rate-limit bucket in one transaction (row locked), so a limit
        holds across every worker. `update` is a pure function; it may run again on a serialisation retry."""
        ...

    async def search_vector(self, query: SearchQuery) -> list[Hit]:
        """k nearest chunks of the collection's current versions by cosine distance, metadata-filtered."""
        ...

    async def search_text(self, query: SearchQuery) -> list[Hit]:
        """Full-text matches (FTS5 bm25 / ts_rank), best first, metadata-filtered."""
        ...

    # --- the HTTP service's Idempotency-Key answers ----------------------------------------------------
    async def idempotency_get(self, key: str, now: datetime) -> IdempotentReply | None:
        """The answer kept for `key`, unless it expired by `now`."""
        ...

    async def idempotency_put(self, reply: IdempotentReply, now: datetime) -> IdempotentReply:
        """Keep `reply` unless an unexpired answer is already kept for its key; return the answer kept
        (this one, or the one that was there first). Also deletes a batch of expired answers."""
        ...


@runtime_checkable
class Backend(Store, IndexStore, WebhookStore, Protocol):
    """What `open_store` returns: the job queue, the document index and the webhooks on one database."""
