"""Run parsers in child processes with a wall-time limit and a memory limit.

A hostile file (zip bomb, 100,000 pages, 100,000 nested tags, a JBIG2 decompression bomb, or a
PDFium bug) must not hang, bloat or kill the caller. Each child caps its own address space with
`RLIMIT_AS`, so an allocation bomb fails inside the child (MemoryError or a native abort) instead of
swapping the machine; the parent waits on the child's pipe with a deadline and SIGKILLs a child that
overruns it. A dead or killed child is replaced on the next request, so the pool keeps serving.

Children are fresh interpreters (`python -m ingestq.pipeline.sandbox`), not forks: the caller is an
asyncio worker with threads and open database connections, none of which may be duplicated into a
child, and unlike multiprocessing's `spawn` this does not re-import the caller's `__main__`. Requests
and replies are pickled over two pipes. Each child imports the parsers once, then serves documents
one at a time until it is retired after `max_tasks_per_child` documents (which bounds slow leaks in
native code); it exits on EOF and when its parent dies.

The result is a value, not an exception: `ParseResult.ok`, a one-line `reason`, and whether the
parser `crashed` or `timed_out` (the job layer quarantines those, and counts them apart).

A child that cannot start (a parser library that fails to import, a child that dies or hangs before it
is ready) is this machine's fault, never the document's: `parse` raises `ParserUnavailable` before the
document is sent, with a one-line `<cause>; <fix>` (the child reports its own import error). Starts are
then refused at once, without a new child, for a backoff (1 s doubling to 30 s), so callers that keep
asking do not respawn children in a tight loop; `check()` tries again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType

from ingestq.pipeline.errors import DocumentTooLarge, ParseError, ParserCrashed, ParserUnavailable
from ingestq.pipeline.model import ParsedDocument, ParseOptions, SourceDocument

_START_TIMEOUT = 60.0  # first import of PDFium, lxml and trafilatura on a busy machine
_START_BACKOFF_FIRST = 1.0
_START_BACKOFF_MAX = 30.0
_CHECK_DOCUMENT = SourceDocument(b"# ingestq\n\nParser self-check.\n", "check.md", "ingestq:check")


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    time_limit: float = 120.0
    """Wall seconds one document may take in its child."""
    memory_limit: int = 2 * 1024**3
    """Address-space cap of each child (RLIMIT_AS), bytes. Virtual, so it must leave room for the
    libraries' mappings (ONNX Runtime for OCR reserves a few hundred MiB)."""
    max_input_bytes: int = 100 * 1024**2
    """Larger inputs are refused before they are sent to a child."""
    max_tasks_per_child: int = 200


@dataclass(frozen=True, slots=True)
class ParseResult:
    document: ParsedDocument | None
    reason: str = ""
    """One line; empty when ok."""
    error_type: str = ""
    """Name of the `ingestq.pipeline.errors` class the failure maps to."""
    crashed: bool = False
    timed_out: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.document is not None

    @property
    def quarantine(self) -> bool:
        return self.crashed or self.timed_out

    def error(self) -> ParseError:
        """The typed, permanent error to raise for a failed result."""
        if self.quarantine:
            return ParserCrashed(self.reason)
        return _ERROR_TYPES.get(self.error_type, ParseError)(self.reason)

    def unwrap(self) -> ParsedDocument:
        if self.document is None:
            raise self.error()
        return self.document


def _error_types() -> dict[str, type[ParseError]]:
    from ingestq.pipeline import errors

    found: dict[str, type[ParseError]] = {}
    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, ParseError):
            found[name] = value
    return found


_ERROR_TYPES = _error_types()


# --- child side -------------------------------------------------------------------------------------


def _child_main(conn: Connection, memory_limit: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing parser must not fill the disk

    try:
        from ingestq.pipeline.model import MediaType
        from ingestq.pipeline.parse.base import parser_for

        for media_type in MediaType:  # import every parser now, outside any document's time limit
            parser_for(media_type)
    except Exception as exc:  # a broken parser library: say which, then exit (no document was sent)
        with contextlib.suppress(OSError, ValueError):
            conn.send(("failed", start_failure(exc)))
        return
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        doc, options = request
        reply, exit_after = _parse_in_child(doc, options, memory_limit)
        try:
            conn.send((*reply, exit_after))  # the parent replaces a child that says it is exiting
        except MemoryError:
            return  # the parent sees EOF: reported as a crash
        if exit_after:
            return


def _parse_in_child(
    doc: SourceDocument, options: ParseOptions, memory_limit: int
) -> tuple[tuple[str, object, str], bool]:
    from ingestq.pipeline.parse import ocr
    from ingestq.pipeline.parse.base import parse_document

    try:
        return ("ok", parse_document(doc, options), ""), ocr.needs_fresh_process()
    except ParseError as exc:
        return ("error", type(exc).__name__, _one_line(str(exc))), ocr.needs_fresh_process()
    except MemoryError:
        # The heap may be fragmented or half-freed: answer, then let the parent start a fresh child.
        return (
            "crash",
            "ParserCrashed",
            f"parser ran out of memory (limit {memory_limit // 2**20} MiB)",
        ), True
    except RecursionError:
        return ("error", "CorruptDocument", "document structure is nested too deeply to parse"), False
    except Exception as exc:  # a parser library's own bug on this input: deterministic, so permanent
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = _one_line(lines[-1] if lines else "") or "no detail"  # the last line of a chained trace
        return ("error", "CorruptDocument", f"parser error: {type(exc).__name__}: {detail}"), False


def start_failure(exc: BaseException) -> str:
    """`<cause>; <fix>` for an exception raised while a child imports the parsers."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    detail = _one_line(lines[-1] if lines else "") or "no detail"
    cause = f"parser process failed to start: {type(exc).__name__}: {detail}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        fix = f"install the missing module {exc.name!r} into the worker's Python environment ({sys.prefix})"
    elif isinstance(exc, ImportError):
        fix = (
            f"repair the parser libraries in the worker's Python environment ({sys.prefix}) as the error says"
        )
    else:
        fix = "see the parser process's traceback in the worker's log"
    return f"{cause}; {fix}"


def _die_with_parent() -> None:
    """Exit when the parent dies, even mid-parse (EOF on the pipe is noticed only between documents).

    A watchdog thread polls the parent id. PR_SET_PDEATHSIG would be cheaper but fires when the
    parent *thread* that started the child exits, and pools are used from short-lived threads.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


class _PipeConnection(Connection):
    """A multiprocessing Connection over one read fd and one write fd (it normally wants one duplex fd)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        super().__init__(read_fd, readable=True, writable=False)
        self._writer = Connection(write_fd, readable=False, writable=True)

    def send(self, obj: object) -> None:
        self._writer.send(obj)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._writer.close()
        super().close()


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024**2:
        return f"{n / 1024:,.1f} KiB"
    return f"{n / 1024**2:,.1f} MiB"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


# --- parent side ------------------------------------------------------------------------------------


@dataclass(eq=False)  # identity: the pool keeps the children it is starting in a set
class _Child:
    process: subprocess.Popen[bytes]
    conn: _PipeConnection
    tasks: int = 0
    # `kill` runs on two threads at once when the pool closes while a child is starting (the closer kills
    # it, the starter's own failure path kills it again): the pipe's fds must be closed once, or the second
    # os.close fails with EBADF, or closes an fd number that something else has been given since.
    _close_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _conn_closed: bool = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.wait(10)
        with self._close_lock:
            if self._conn_closed:
                return
            self._conn_closed = True
            self.conn.close()

    def describe_death(self) -> str:
        self.wait(5)
        code = self.process.returncode
        if code is None:
            return "parser process stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (likely out of memory)" if -code in (signal.SIGKILL, signal.SIGABRT) else ""
            return f"parser process crashed with {name}{hint}"
        return f"parser process exited unexpectedly with status {code}"


@dataclass
class PoolStats:
    parsed: int = 0
    failed: int = 0
    crashed: int = 0
    timed_out: int = 0
    children_started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ParserPool:
    """A fixed number of parser children; `parse` is blocking and thread-safe, `aparse` is async."""

    def __init__(
        self,
        size: int = 1,
        limits: SandboxLimits | None = None,
        options: ParseOptions | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a parser pool needs at least one child")
        self.limits = limits or SandboxLimits()
        self.options = options or ParseOptions()
        self.stats = PoolStats()
        self._slots: queue.Queue[_Child | None] = queue.Queue()
        for _ in range(size):
            self._slots.put(None)  # started lazily, on first use
        self._size = size
        self._closed = False
        self._start_lock = threading.Lock()
        self._starting: set[_Child] = set()  # children spawned, not yet ready (guarded by _start_lock)
        self._start_failure: str | None = None
        """Why the last start failed (None: it did not); starts are refused until `_start_retry_at`."""
        self._start_retry_at = 0.0
        self._start_backoff = 0.0

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def child_pids(self) -> list[int]:
        """Process ids of the idle, running children (for monitoring and tests)."""
        with self._slots.mutex:
            return [c.process.pid for c in self._slots.queue if c is not None and c.alive()]

    async def aparse(self, doc: SourceDocument, options: ParseOptions | None = None) -> ParseResult:
        """`parse` on a thread. Cancelling the caller does not stop the child early: the parse still
        ends within the time limit, and its slot is then free again."""
        return await asyncio.to_thread(self.parse, doc, options)

    def parse(self, doc: SourceDocument, options: ParseOptions | None = None) -> ParseResult:
        if self._closed:
            raise RuntimeError("parser pool is closed")
        if len(doc.data) > self.limits.max_input_bytes:
            reason = f"file is {_size(len(doc.data))}, over the {_size(self.limits.max_input_bytes)} limit"
            self._count(ParseResult(None, reason, DocumentTooLarge.__name__))
            return ParseResult(None, reason, DocumentTooLarge.__name__)
        child = self._slots.get()
        try:
            child, result = self._run(child, doc, options or self.options)
        except BaseException:
            if child is not None:
                child.kill()
            self._slots.put(None)
            raise
        self._slots.put(child)
        self._count(result)
        return result

    def check(self) -> None:
        """Raise `ParserUnavailable` unless a parser child serves: parse a tiny document, starting a child
        now if none is idle, even within the start backoff. Blocking, like `parse`."""
        with self._start_lock:
            self._start_retry_at = 0.0
        result = self.parse(_CHECK_DOCUMENT)
        if not result.ok:
            raise ParserUnavailable(
                f"parser process failed its self-check: {result.reason}; "
                "see the parser process's traceback in the worker's log"
            )

    @property
    def unavailable(self) -> str | None:
        """Why the last attempt to start a child failed, until a child starts again."""
        return self._start_failure

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._start_lock:
            starting = list(self._starting)
        for starting_child in starting:  # one still importing would hold its slot for up to _START_TIMEOUT
            starting_child.kill()
        for _ in range(self._size):
            child = self._slots.get()
            if child is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                child.conn.send(None)
            child.wait(5)
            child.kill()

    # --- internals ---

    def _start(self) -> _Child:
        with self._start_lock:
            if self._start_failure is not None and time.monotonic() < self._start_retry_at:
                raise ParserUnavailable(self._start_failure)  # no new child within the backoff
        try:
            child = self._spawn()
        except ParserUnavailable as exc:
            with self._start_lock:
                self._start_failure = str(exc)
                self._start_backoff = min(
                    max(self._start_backoff * 2, _START_BACKOFF_FIRST), _START_BACKOFF_MAX
                )
                self._start_retry_at = time.monotonic() + self._start_backoff
            raise
        with self._start_lock:
            self._start_failure, self._start_backoff = None, 0.0
        return child

    def _spawn(self) -> _Child:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ingestq.pipeline.sandbox",
                    str(to_child_r),
                    str(from_child_w),
                    str(self.limits.memory_limit),
                ],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                # glibc reserves 64 MiB of address space per thread arena, which RLIMIT_AS counts:
                # with ONNX Runtime's threads that alone can exhaust the cap.
                env={**os.environ, "MALLOC_ARENA_MAX": "2"},
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        child = _Child(process, _PipeConnection(from_child_r, to_child_w))
        with self.stats.lock:
            self.stats.children_started += 1
        reply: object = None
        timed_out = False
        with self._start_lock:
            self._starting.add(child)
        try:
            if child.conn.poll(_START_TIMEOUT):
                reply = child.conn.recv()
            else:
                timed_out = True
        except (EOFError, OSError):
            pass  # the pipe closed: the child is exiting (it may not be reaped yet, so do not ask alive())
        finally:
            with self._start_lock:
                self._starting.discard(child)
        if reply == "ready":
            return child
        if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "failed":
            reason = str(reply[1])  # the child's own `start_failure`
        elif timed_out and child.alive():
            reason = (
                f"parser process failed to start: not ready within {_START_TIMEOUT:g} s; "
                "the machine is overloaded or a parser library hangs on import"
            )
        else:
            death = child.describe_death().removeprefix("parser process ")
            reason = (
                f"parser process failed to start: {death}; see the parser process's traceback in the "
                "worker's log"
            )
        child.kill()
        raise ParserUnavailable(reason)

    def _run(
        self, child: _Child | None, doc: SourceDocument, options: ParseOptions
    ) -> tuple[_Child | None, ParseResult]:
        if child is not None and (not child.alive() or child.tasks >= self.limits.max_tasks_per_child):
            self._retire(child)
            child = None
        if child is None:
            child = self._start()
        started = time.monotonic()
        try:
            child.conn.send((doc, options))
        except (OSError, ValueError):
            reason = child.describe_death()
            child.kill()
            return None, ParseResult(None, reason, ParserCrashed.__name__, crashed=True)
        child.tasks += 1
        try:
            answered = child.conn.poll(self.limits.time_limit)
            reply = child.conn.recv() if answered else None
        except (EOFError, OSError):
            reason = child.describe_death()
            child.kill()
            elapsed = time.monotonic() - started
            return None, ParseResult(None, reason, ParserCrashed.__name__, crashed=True, seconds=elapsed)
        elapsed = time.monotonic() - started
        if reply is None:
            child.kill()
            reason = f"parser timed out after {self.limits.time_limit:g} s"
            return None, ParseResult(None, reason, ParserCrashed.__name__, timed_out=True, seconds=elapsed)
        status, payload, reason, exiting = reply
        if exiting:
            child.wait(5)  # it exits by itself after answering
            child.kill()
        kept = None if exiting else child
        if status == "ok":
            assert isinstance(payload, ParsedDocument)
            return kept, ParseResult(payload, seconds=elapsed)
        return kept, ParseResult(None, reason, str(payload), crashed=status == "crash", seconds=elapsed)

    def _retire(self, child: _Child) -> None:
        if child.alive():
            with contextlib.suppress(OSError, ValueError):
                child.conn.send(None)
            child.wait(5)
        child.kill()

    def _count(self, result: ParseResult) -> None:
        with self.stats.lock:
            if result.ok:
                self.stats.parsed += 1
            elif result.timed_out:
                self.stats.timed_out += 1
            elif result.crashed:
                self.stats.crashed += 1
            else:
                self.stats.failed += 1


if __name__ == "__main__":  # the child: python -m ingestq.pipeline.sandbox READ_FD WRITE_FD MEMORY_LIMIT
    _child_main(_PipeConnection(int(sys.argv[1]), int(sys.argv[2])), int(sys.argv[3]))
