"""The persistent judgement store: every paid judge sample, content-addressed, in one SQLite file.

A tournament over a dataset costs GPU-days of judge time, so a judgement is paid for once and
never lost: before judging a prompt, the scheduler CLAIMS it (:meth:`JudgementStore.claim`: a
lease on that judge's work on that prompt, taken in the transaction that reads which of its
judgements are stored), and it hands every new judgement to the store (:meth:`put`). A resumed,
repeated or concurrent run with the same judge reuses what is stored, or waits for what another
run is judging right now (:mod:`tourney.cache` is the scheduler's side).

Keys
    :meth:`JudgementStore.key` is the sha256 (hex) of a canonical JSON (sorted keys, no spaces,
    UTF-8) of ``{"first_sha256", "judge", "key_version", "prompt_sha256", "sample",
    "second_sha256"}``: the judge's :meth:`~tourney.judges.base.Judge.identity` (model, format,
    sampling settings) inline, the sha256 of the prompt's canonical JSON (a string or a list of
    role/content messages), the sha256 of each response text IN PRESENTATION ORDER, and the sample
    index. (Digests rather than the texts themselves: the same strength, the digests are the
    ``texts`` table's keys anyway, and long texts are hashed once, not JSON-escaped again.)
    Swapping the order is a different key (position bias is real: the swapped match is a
    different question to the judge). The prompt id and the candidate indices are NOT part of the
    key: the same texts under another id are the same question.

What is stored (schema version 2), per judgement, and why
    One row in ``judgements``, ~150 bytes plus the reasoning and verdict texts: the key (32-byte
    BLOB: the address), the judge (a small integer into ``judges``), the prompt and both
    response texts (integers into ``texts``: each distinct text is stored once, however many
    matches use it), the prompt id and the candidate indices (bookkeeping for ``log export``),
    the sample index, the outcome, the reasoning (zlib-compressed UTF-8 as a BLOB when that
    saves at least 10% of a text of 256 characters or more: real reasoning compresses ~2x,
    short texts not at all), the verdict text, the three token counts, the latency, the error
    (NULL for a judgement), ``extra`` (canonical JSON), the creation time (unix seconds), and
    ``row_hash``: the sha256 (32 bytes) of the canonical JSON of the row's logical content
    (every column above, texts and judge by their sha256 hex, the reasoning uncompressed), so a
    row edited behind the store's back is detected. Response and prompt texts are compressed by
    the same rule. Measured (benchmarks/bench_store.py, bench_scale.py): with AlpacaEval
    responses and 2,000 characters of real judge reasoning, 1,795 bytes per judgement against
    4,008 for schema version 1 (hex digests in every row and index, nothing compressed; 3,525
    for schema 2 without compression); with the simulated judge's short texts, 419 against 858.

    The first put of a key wins, except that an ERROR row is replaced by any later put of the
    same key (an error is not a paid judgement, see below).

Verified reads
    Every row read from the file (:meth:`get`, :meth:`get_many`) is checked against its
    ``row_hash`` (a sha256 over ~200 bytes: microseconds). A mismatch raises :class:`StoreError`
    naming the store and ``tourney store check``: an edited verdict is never reused silently.
    :meth:`check` verifies the whole file (texts, keys, orphans too).

Errors and abstentions
    ERROR judgements are stored (for the record) but :meth:`get` and :meth:`get_many` skip them
    unless ``include_errors=True``, and a claim does not count them as stored, so a resumed run
    retries them. ABSTAIN judgements were paid for and are returned like votes.

Claims: never pay twice across processes
    ``claims`` holds one lease row per piece of work some run is doing now, by a key the caller
    names (the scheduler's cache: one judge on one prompt text), with the owner (host, pid
    namespace, pid, process start time and a random token: unique per store object) and an
    expiry (unix seconds). :meth:`claim` takes the lease in the SAME write transaction that reads
    the keys of the stored judgements of its prompt, so two runs never both see that work as
    free: while the lease is held, every other judgement of it is missing, and a run that asks
    for the lease waits. The request stays open and is re-examined every ``poll_s`` seconds
    until the lease ends: given back with :meth:`release` (committed after the holder's puts, so
    the next holder finds them), expired, or held by a dead process; then this run takes it.
    Leases are renewed by the writer thread every ``lease_s / 4`` seconds while the store is open
    (a judge call may take minutes: the lease is short, the renewal keeps it) and all given back
    at :meth:`close`. A killed process's leases are taken over at once by a run on the same host
    (its pid is gone, a zombie, or a newer process) and after ``lease_s`` (60 s) elsewhere.

Writer thread, writer process, batching and what a kill loses
    Writes never run on the caller's thread: :meth:`put` adds the judgement to an in-memory
    pending map (reads see it at once) and a queue; one writer thread per store commits the
    queue together with the claim requests, in one transaction per cycle, as soon as it has
    work (group commit: everything that arrived during a commit goes into the next one). Puts
    alone wait at most ``flush_interval_s`` (0.02 s) before their commit. :meth:`flush` waits
    until everything put before it is committed. The transaction itself (rows, text and judge
    ids, compression, row hashes, claims) is a :class:`~tourney._store_writer.Committer`'s, run
    by default (``writer="process"``) in a writer process of the store's own, to which the
    writer thread sends each cycle over a pipe: row building and SQLite then never take the
    GIL of the interpreter that runs the event loop (with an instant judge: 8.1-8.3k
    judgements/s against 5.2-5.9k on the thread, benchmarks/bench_scale.py). ``writer="thread"``
    (or ``TOURNEY_STORE_WRITER=thread``) runs the Committer on the writer thread; so does a
    store whose writer process cannot start (with a warning). A writer process that is killed
    is replaced, and the cycle it was given goes to the new one. What can be lost:

    * process killed (SIGKILL, OOM, crash): only puts not yet handed to the writer process,
      i.e. those of the last ``flush_interval_s`` plus one commit (the writer process of a
      killed run commits the cycle it was given, then exits at the end of its input): 76-80
      ms of judgements on a loaded 2-core machine, measured on real killed processes
      (benchmarks/bench_kill.py; 119-138 ms with the writer on a thread; tests/test_claims.py
      bounds it).
    * power loss / OS crash: commits use ``synchronous=NORMAL`` (no fsync per commit: a WAL
      commit survives a process kill without one); with ``durable=True`` (the default) a sync
      thread fsyncs the WAL at most ``sync_interval_s`` (1 s) after a commit, and close fsyncs
      once more, so at most that last second is lost; with ``durable=False`` only SQLite's
      checkpoints sync. Never corruption. The same thread copies the WAL into the database
      (PASSIVE, on its own connection) past 16 MB, and the writer finishes that checkpoint past
      32 MB, between two commits, so the WAL starts over: its file stays bounded, and commits
      hardly wait for either.

Memory
    Flat in the size of the data: the pending map holds only uncommitted puts (the scheduler's
    cache stops asking for new work while more than 500 wait), the writer remembers the row ids
    of at most ``_ID_CACHE`` texts and judges (a prompt's texts are used by its matches close
    together; past the bound it starts over), and the page caches are bounded (SQLite's default
    2 MB, 8 MB for the writer's connection). The writer process adds ~15 MB.

Concurrency
    Several processes may write the same store at once and all succeed: WAL mode, short
    ``BEGIN IMMEDIATE`` write transactions, SQLite's busy timeout and a retry loop with backoff on
    SQLITE_BUSY; a writer blocked for more than ``timeout_s`` raises :class:`StoreError`. Puts are
    idempotent (first non-error put wins). One store object may be shared by threads, but not
    across ``fork``: open one per process.

Faults
    A file that is not a tourney store, a corrupted file, or a store written with another key
    version or a newer schema raises :class:`StoreError` at open and is never modified (the open
    runs SQLite's ``quick_check``, ~0.2 s for 300 MB). A store of schema version 1 (tourney
    before claims) is upgraded in place, in one transaction, by the first writable open (its
    judgements keep their keys and row hashes); a read-only open of one asks for that upgrade.
    Disk full or a store that became read-only raises :class:`StoreError` from the next
    put/flush/claim; everything committed stays, and the failed batch stays pending so a later
    :meth:`flush` retries it.

Stdlib only (sqlite3, json, hashlib, zlib, threading, subprocess, pickle), so importing it is cheap.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import pickle
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from hashlib import sha256
from typing import Any

from . import _store_writer
from ._store_writer import (
    _CHECKPOINT_BYTES,
    _CHUNK,
    _COLUMNS,
    _COMPRESS_MIN_CHARS,
    _ERROR,
    Committer,
    _is_busy,
    _pack,
    _proc_state,
    _row_hash,
    read_frame,
    tune_for_writes,
    write_frame,
    write_transaction,
)
from ._store_writer import connect as _sqlite_connect
from .errors import StoreError
from .hashing import sha256_hex as _sha256
from .types import Judgement, Outcome, Prompt

__all__ = ["JudgementStore", "KEY_VERSION", "SCHEMA_VERSION"]

log = logging.getLogger("tourney")

#: Version of the table layout; an older one is upgraded at a writable open, a newer one refused.
SCHEMA_VERSION = 2
#: Version of the key recipe; bump it whenever :meth:`JudgementStore.key` changes.
KEY_VERSION = 1
#: SQLite ``PRAGMA application_id`` of a tourney store (ASCII "tour").
APPLICATION_ID = 0x746F7572
_APPLICATION = "tourney-judgement-store"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: SQLite page size of new stores (bytes). 4 kB: every commit rewrites whole pages, and the key and
#: text indexes take random inserts, so each judgement dirties an index page or two; with 16 kB
#: pages a commit wrote ~30 kB of WAL per judgement (4x the I/O of 4 kB pages, which still hold a
#: few compressed judgements each; long reasoning goes to overflow pages at any size)
_PAGE_SIZE = 4096
#: check() reports at most this many problems of one kind, then a count.
_MAX_PROBLEMS = 50
_SCHEMA = f"""
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE judges (
    id       INTEGER PRIMARY KEY,
    hash     BLOB NOT NULL UNIQUE,   -- sha256 of identity
    identity TEXT NOT NULL           -- canonical JSON of Judge.identity()
);
CREATE TABLE texts (
    id   INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,       -- sha256 of the text (UTF-8)
    body NOT NULL                    -- a response, or a prompt as canonical JSON (a BLOB: zlib of the UTF-8)
);
CREATE TABLE judgements (
    id                INTEGER PRIMARY KEY,
    key               BLOB NOT NULL UNIQUE,
    judge_id          INTEGER NOT NULL,
    prompt_id         TEXT NOT NULL,
    prompt_text_id    INTEGER NOT NULL,
    first_index       INTEGER NOT NULL,
    second_index      INTEGER NOT NULL,
    first_text_id     INTEGER NOT NULL,
    second_text_id    INTEGER NOT NULL,
    sample            INTEGER NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('A', 'B', 'tie', 'abstain', 'error')),
    reasoning         NOT NULL,      -- TEXT, or a BLOB: zlib(UTF-8)
    verdict           TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s         REAL NOT NULL,
    error             TEXT,
    extra             TEXT NOT NULL,
    created           REAL NOT NULL,
    row_hash          BLOB NOT NULL  -- sha256 of the row's logical content (see the module docstring)
);
CREATE INDEX judgements_prompt_text ON judgements (prompt_text_id);
CREATE TABLE claims (
    key     BLOB PRIMARY KEY,        -- a judgement key some run is judging now
    owner   TEXT NOT NULL,           -- host|pid namespace|pid|process start|token
    expires REAL NOT NULL            -- unix seconds, renewed while the owner runs
) WITHOUT ROWID;
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""
_TABLES = ("meta", "judges", "texts", "judgements", "claims")
_OUTCOME_VALUES = {o: o.value for o in Outcome}  # (an enum's .value is a slow property)
#: how the writer thread commits unless told: "process" (a writer process of its own, see
#: tourney._store_writer) or "thread" (on the writer thread itself)
WRITERS = ("process", "thread")
_WRITER_SCRIPT = _store_writer.__file__

# A row as read back, in the order of its logical content (what row_hash covers), then row_hash:
# key, judge hash, prompt id, prompt hash, indices, text hashes, sample, outcome, reasoning, verdict,
# tokens, latency, error, extra, created.
_READ = (
    "SELECT j.key, g.hash, j.prompt_id, p.hash, j.first_index, j.second_index, f.hash, s.hash, j.sample, "
    "j.outcome, j.reasoning, j.verdict, j.prompt_tokens, j.cached_tokens, j.completion_tokens, j.latency_s, "
    "j.error, j.extra, j.created, j.row_hash FROM judgements j "
    "LEFT JOIN judges g ON g.id = j.judge_id LEFT JOIN texts p ON p.id = j.prompt_text_id "
    "LEFT JOIN texts f ON f.id = j.first_text_id LEFT JOIN texts s ON s.id = j.second_text_id"
)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes, bytearray)):
        return list(obj)
    if isinstance(obj, Outcome):
        return obj.value
    raise TypeError(f"{type(obj).__name__} is not a JSON value: {obj!r}")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
)


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no whitespace, non-ASCII kept, no NaN.
    Mappings and sequences of any type serialise as objects and arrays."""
    return _ENCODER.encode(value)


def _key_from_hashes(judge_json: str, prompt_hash: str, first_hash: str, second_hash: str, sample: int) -> str:
    # Exactly sha256(canonical_json({"first_sha256", "judge", "key_version", "prompt_sha256",
    # "sample", "second_sha256"})) (keys in sorted order), built from an already-canonical judge
    # identity and hex digests, so a put serialises and hashes each part once.
    text = (
        '{"first_sha256":"' + first_hash + '","judge":' + judge_json + ',"key_version":' + str(KEY_VERSION)
        + ',"prompt_sha256":"' + prompt_hash + '","sample":' + str(sample) + ',"second_sha256":"' + second_hash + '"}'
    )  # fmt: skip
    return sha256(text.encode("utf-8")).hexdigest()  # (hashing.sha256_hex inline: one call per judgement)


def _unpack(value: str | bytes) -> str:
    return value if isinstance(value, str) else zlib.decompress(value).decode("utf-8")


def _blob(key: str) -> bytes | None:
    """The stored form of a key (32 bytes), or None for a string that is not a sha256 hex digest."""
    try:
        b = bytes.fromhex(key)
    except (ValueError, TypeError):
        return None
    return b if len(b) == 32 else None


def _check_sample(sample: Any) -> int:
    if isinstance(sample, bool) or not isinstance(sample, int):
        raise TypeError(f"sample must be an int, got {sample!r}")
    return sample


def _finite(latency_s: Any) -> float:
    x = float(latency_s)
    if not math.isfinite(x):  # JSON (the row hash) has no such number: refused here, not by the writer
        raise ValueError(f"a judgement's latency_s must be a finite number, got {latency_s!r}")
    return x


def _check_text(name: str, text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


# ---------------------------------------------------------------------- owners (claims)


def _host_id() -> str:
    """This machine and PID namespace: claims of the same host id can be checked by pid."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}|{namespace}"


def _new_owner() -> str:
    pid = os.getpid()
    try:
        state = _proc_state(pid)
        start = state[1] if state else ""
    except OSError:
        start = ""
    return f"{_host_id()}|{pid}|{start}|{secrets.token_hex(6)}"


# ---------------------------------------------------------------------- writer bookkeeping


class _Put:
    """A buffered judgement: everything the writer needs to build its row."""

    __slots__ = (
        "first_hash",
        "first_text",
        "judge_hash",
        "judge_json",
        "judgement",
        "key",
        "logical",
        "prompt_hash",
        "prompt_json",
        "second_hash",
        "second_text",
        "seq",
    )

    def __init__(
        self,
        key: str,
        judgement: Judgement,
        judge_json: str,
        judge_hash: str,
        prompt_json: str,
        prompt_hash: str,
        first_text: str,
        first_hash: str,
        second_text: str,
        second_hash: str,
        logical: tuple[Any, ...],
    ):
        self.key, self.judgement, self.seq = key, judgement, 0
        self.judge_json, self.judge_hash = judge_json, judge_hash
        self.prompt_json, self.prompt_hash = prompt_json, prompt_hash
        self.first_text, self.first_hash = first_text, first_hash
        self.second_text, self.second_hash = second_text, second_hash
        self.logical = logical


class _ClaimRequest:
    __slots__ = ("future", "key", "prompt_hash")

    def __init__(self, key: str, prompt_hash: str | None, future: concurrent.futures.Future):
        self.key = key
        self.prompt_hash = prompt_hash
        self.future = future


class _WriterEnded(StoreError):
    """The writer process ended before it answered (killed, out of memory)."""


class _WriterProcess:
    """A :class:`~tourney._store_writer.Committer` in a writer process of its own (see
    :mod:`tourney._store_writer`), with the Committer's calls, each a round trip on its pipes
    (the calling thread waits with the GIL released). A writer process that ended (killed, out of
    memory) fails the call it was answering with a :class:`StoreError`; the batch stays pending
    with the store, and the next call starts a new process."""

    def __init__(self, args: tuple):
        self._args = args
        self.proc: subprocess.Popen | None = None
        self._start()

    def _start(self) -> None:
        if not sys.executable:
            raise OSError("this interpreter does not know its executable (sys.executable is empty)")
        # -I: neither the script's folder (tourney/, whose types.py would shadow the stdlib's) nor
        # the user's site is on sys.path, and no PYTHON* variable applies; -S: the stdlib is enough
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", _WRITER_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            close_fds=True, start_new_session=True,  # a Ctrl-C reaches the parent, which closes in order
        )  # fmt: skip
        try:
            self.pid = self._call(("open", *self._args))
        except BaseException:
            self.close()
            raise

    def commit(self, *args: Any) -> list[frozenset | None]:
        """The Committer's commit; a writer process that ended is replaced, and the cycle sent to
        the new one (a cycle is safe to repeat: the first put of a key wins, a lease is this owner's)."""
        for attempt in (1, 2):
            if self.proc is None or self.proc.poll() is not None:
                self.close()
                try:
                    self._start()
                except (OSError, subprocess.SubprocessError) as exc:  # no new process (EMFILE, ENOMEM, ...)
                    raise _WriterEnded(
                        f"cannot start a new writer process for the judgement store {self._args[0]} ({exc}); "
                        "what it had not committed stays pending, and the next commit tries again"
                    ) from exc
            try:
                return self._call(("commit", *args))
            except _WriterEnded as exc:
                if attempt == 2:
                    raise
                log.warning("%s; starting a new one", exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def sql(self, statement: str) -> list[tuple]:
        return self._call(("sql", statement))

    def _call(self, message: tuple) -> Any:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise StoreError(f"the writer process of the judgement store {self._args[0]} is closed")
        why: BaseException | None = None
        try:
            write_frame(proc.stdin.fileno(), message)
            reply = read_frame(proc.stdout.fileno())
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            reply, why = None, exc
        except BaseException:  # (a KeyboardInterrupt): its reply would answer the next call; end it
            self.close()
            raise
        if reply is None:
            self.close()
            ended = f"exit status {proc.returncode}" if proc.returncode is not None else f"{why}"
            raise _WriterEnded(
                f"the writer process (pid {proc.pid}) of the judgement store {self._args[0]} ended ({ended}); "
                "what it had not committed stays pending, and the next commit starts a new one"
            )
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "sqlite":
            error = sqlite3.OperationalError(reply[2])
            error.sqlite_errorname = reply[1]  # SQLite's error name, as _store_error reads it
            raise error
        raise StoreError(
            f"the writer process of the judgement store {self._args[0]} failed (a bug in tourney: please report "
            f"it):\n{reply[1]}"
        )

    def close(self) -> None:
        """Let the writer process close its connection and exit (killed after ``timeout_s``)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None and proc.stdin is not None and proc.stdout is not None:
            with contextlib.suppress(OSError, EOFError, pickle.UnpicklingError):
                write_frame(proc.stdin.fileno(), ("close",))
                read_frame(proc.stdout.fileno())
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(timeout=self._args[4])
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_OPEN_STORES: weakref.WeakSet[JudgementStore] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:  # pragma: no cover - exercised by interpreter exit
    """Commit what stores left open at exit still hold (their writer threads are daemons)."""
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.close()


class JudgementStore:
    """A persistent, content-addressed store of judge samples in one SQLite file (see the module
    docstring for keys, layout, claims, batching, durability, concurrency and faults).

    ``JudgementStore(path)`` opens the store at ``path``, creating it if the file does not exist
    (its directory must). ``readonly=True`` opens an existing store for reading only (export,
    stats, check; puts and claims raise). The writer thread commits puts at most
    ``flush_interval_s`` seconds after they arrive (None: only on :meth:`flush`, :meth:`close`,
    when ``batch_size`` puts are waiting, or with a claim), at most ``batch_size`` rows per
    transaction. ``durable`` fsyncs the WAL at most ``sync_interval_s`` seconds after a commit
    (power-loss safety; a process kill never needs it). A writer waits up to ``timeout_s``
    seconds for another process's write lock. ``check_on_open`` runs SQLite's ``quick_check`` at
    open so a corrupted file is refused before it is used. ``lease_s`` is how long a claim lives
    without renewal (renewed every ``lease_s / 4`` while open); ``poll_s`` how often a claim
    held by another run is re-examined; a claim request waits up to ``claim_delay_s`` for others
    to share its transaction. ``writer`` says where the commits run: ``"process"`` (a writer
    process of the store's own; the default, or ``$TOURNEY_STORE_WRITER``) or ``"thread"``.

    Use it as a context manager, or call :meth:`close`: pending puts are committed there.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        batch_size: int = 2000,
        flush_interval_s: float | None = 0.02,
        durable: bool = True,
        sync_interval_s: float = 1.0,
        timeout_s: float = 60.0,
        check_on_open: bool = True,
        lease_s: float = 60.0,
        poll_s: float = 0.05,
        claim_delay_s: float = 0.01,
        writer: str | None = None,
    ):
        writer = writer or os.environ.get("TOURNEY_STORE_WRITER") or "process"
        if writer not in WRITERS:
            raise ValueError(f"writer must be one of {', '.join(WRITERS)}, got {writer!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_interval_s is not None and not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0 or None, got {flush_interval_s}")
        for name, value in (("sync_interval_s", sync_interval_s), ("lease_s", lease_s), ("poll_s", poll_s)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not claim_delay_s >= 0:
            raise ValueError(f"claim_delay_s must be >= 0, got {claim_delay_s}")
        self.path = os.fspath(path)
        self.readonly = readonly
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.durable = durable
        self.sync_interval_s = sync_interval_s
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.claim_delay_s = claim_delay_s
        self.writer = writer
        self.owner = _new_owner()
        self._host_id = _host_id()
        # the caller-side state, guarded by _cond's lock; the writer thread takes it for snapshots
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: dict[str, _Put] = {}  # key -> newest uncommitted put (what reads see)
        self._queue: list[_Put] = []  # puts in arrival order, not yet handed to the writer
        self._releases: list[str] = []  # keys whose claim to give back
        self._requests: list[_ClaimRequest] = []  # new claim requests
        self._waiting: list[_ClaimRequest] = []  # requests blocked by another owner's lease
        self._held: set[str] = set()  # keys this store holds a claim on
        self._put_seq = 0  # puts so far
        self._committed_seq = 0  # every put up to this one is committed
        self._attempts = 0  # commit attempts so far (a flush waits for one after it asked)
        self._flush_wanted = 0  # a flush waits for this put to be committed
        self._flushes = 0  # flush() calls so far
        self._error_flushes = 0  # ... when the last commit failed (a later flush retries at once)
        self._dirty_since: float | None = None  # since when puts or releases wait for the writer
        self._requests_since: float | None = None  # since when claim requests wait for the writer
        self._error: StoreError | None = None  # the last commit failed: put/flush/claim raise it
        self._error_attempt = 0
        self._retry_at = 0.0  # after a failure, the writer retries on its own from this time
        self._next_poll = 0.0
        self._next_renew = time.monotonic() + lease_s / 4
        self._commits = 0  # write transactions committed (by the writer thread)
        self._synced = 0  # ... of which the WAL was fsynced after
        self._sync_warned = False
        self._stop_sync = threading.Event()
        self._syncer: threading.Thread | None = None
        self._sconn: sqlite3.Connection | None = None
        self._stopping = False
        self._closed_error: StoreError | None = None
        self._rlock = threading.RLock()  # the read connection
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        # the writer's side: a Committer (writer="thread") or a _WriterProcess running one; the
        # writer thread holds _wire_lock while it talks to it
        self._committer: Committer | _WriterProcess | None = None
        self._wire_lock = threading.Lock()
        self._conn = self._open(check_on_open)
        if not readonly:
            try:
                self._sconn = self._connect("rwc")
                for c in (self._conn, self._sconn):
                    tune_for_writes(c)
                self._committer = self._start_committer()
            except BaseException:
                for opened in (self._conn, self._sconn):
                    if opened is not None:
                        opened.close()
                self._conn = self._sconn = None
                raise
            self._thread = threading.Thread(
                target=self._writer_main, name=f"tourney-store-writer:{os.path.basename(self.path)}", daemon=True
            )
            self._thread.start()
            self._syncer = threading.Thread(
                target=self._syncer_main, name=f"tourney-store-sync:{os.path.basename(self.path)}", daemon=True
            )
            self._syncer.start()
            _OPEN_STORES.add(self)

    # ------------------------------------------------------------------ keys

    @staticmethod
    def key(judge_identity: Mapping[str, Any], prompt: Prompt, first_text: str, second_text: str, sample: int) -> str:
        """The content address of one judge sample: sha256 hex of the canonical JSON of
        ``{"first_sha256": H(first_text), "judge": judge_identity, "key_version": KEY_VERSION,
        "prompt_sha256": H(canonical_json(prompt)), "sample": sample, "second_sha256": H(second_text)}``
        where ``H`` is the sha256 hex of the UTF-8 text.

        ``first_text`` is the response shown first (position "A"): swapping the two texts gives
        a different key. ``judge_identity`` is :meth:`Judge.identity` (values are hashed as given:
        ``temperature=1`` and ``1.0`` differ). The prompt id and candidate indices are not part of
        the key.
        """
        return _key_from_hashes(
            canonical_json(judge_identity), _sha256(canonical_json(prompt)),
            _sha256(_check_text("first_text", first_text)), _sha256(_check_text("second_text", second_text)),
            _check_sample(sample),
        )  # fmt: skip

    # ------------------------------------------------------------------ reads

    def get(self, key: str, *, include_errors: bool = False) -> Judgement | None:
        """The stored judgement for ``key`` (pending puts included), or None. ERROR judgements
        count as absent unless ``include_errors``, so a resumed run retries them. Raises
        :class:`StoreError` when the stored row fails its hash check."""
        return self.get_many([key], include_errors=include_errors).get(key)

    def get_many(self, keys: Iterable[str], *, include_errors: bool = False) -> dict[str, Judgement]:
        """The stored judgements for those of ``keys`` that have one (see :meth:`get`); every row
        read from the file is verified against its row hash."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Judgement] = {}
        errors_pending: dict[str, Judgement] = {}
        to_query = []
        with self._lock:
            self._connection()
            for k in wanted:
                hit = self._pending.get(k)
                if hit is None:
                    to_query.append(k)
                elif hit.judgement.outcome is Outcome.ERROR:
                    errors_pending[k] = hit.judgement  # a committed real judgement would beat it
                    to_query.append(k)
                else:
                    found[k] = hit.judgement
        if to_query:
            with self._rlock:
                found.update(self._read(self._connection(), to_query, include_errors))
        if include_errors:
            for k, j in errors_pending.items():
                if k not in found or found[k].outcome is Outcome.ERROR:
                    found[k] = j
        return {k: found[k] for k in wanted if k in found}

    @property
    def backlog(self) -> int:
        """Puts the writer thread has not committed yet (what a kill now would lose)."""
        return len(self._queue)

    @property
    def has_pending(self) -> bool:
        """Whether any put of this store object is not committed yet (a hint, without the lock)."""
        return bool(self._pending)

    def pending(self, keys: Iterable[str]) -> dict[str, Judgement]:
        """The non-error judgements among ``keys`` put into this store object and not yet
        committed (no file access: what a claim would return without a round trip)."""
        with self._lock:
            out = {}
            for k in keys:
                hit = self._pending.get(k)
                if hit is not None and hit.judgement.outcome is not Outcome.ERROR:
                    out[k] = hit.judgement
            return out

    def _read(self, conn: sqlite3.Connection, keys: Sequence[str], include_errors: bool) -> dict[str, Judgement]:
        """Committed judgements of ``keys`` (hex), each verified against its row hash."""
        where = "" if include_errors else f" AND j.outcome != '{_ERROR}'"
        found: dict[str, Judgement] = {}
        blobs = [b for b in map(_blob, keys) if b is not None]  # a key that is no sha256 hex is never stored
        try:
            for i in range(0, len(blobs), _CHUNK):
                chunk = blobs[i : i + _CHUNK]
                sql = f"{_READ} WHERE j.key IN ({', '.join('?' * len(chunk))}){where}"
                for row in conn.execute(sql, chunk):
                    key = row[0].hex()
                    found[key] = self._verified(key, row)
        except sqlite3.Error as exc:
            raise self._store_error(exc, "reading") from exc
        return found

    def _verified(self, key: str, row: Sequence[Any]) -> Judgement:
        """The judgement of a row read with ``_READ``, after checking it against its row hash."""
        (_, judge_hash, pid, prompt_hash, fi, si, first_hash, second_hash, sample, outcome, reasoning, verdict,
         pt, ct, comp, latency, error, extra, created, row_hash) = row  # fmt: skip
        hint = f"run `tourney store check {self.path}` to list the damage"
        if None in (judge_hash, prompt_hash, first_hash, second_hash):
            raise StoreError(
                f"judgement {key} in the judgement store {self.path} references a missing text or judge; "
                f"refusing to reuse it: {hint}"
            )
        try:
            reasoning = _unpack(reasoning)
            logical = (key, judge_hash.hex(), pid, prompt_hash.hex(), fi, si, first_hash.hex(), second_hash.hex(),
                       sample, outcome, reasoning, verdict, pt, ct, comp, latency, error, extra, created)  # fmt: skip
            ok = _row_hash(logical) == row_hash
        except (zlib.error, UnicodeDecodeError, TypeError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise StoreError(
                f"judgement {key} in the judgement store {self.path} does not match its row hash: the row was "
                f"changed after it was stored, so its verdict is not reused; {hint} (then delete the damaged "
                "rows, or start a new store)"
            )
        try:
            return Judgement(
                outcome=Outcome(outcome), reasoning=reasoning, verdict=verdict, sample=sample, prompt_tokens=pt,
                cached_tokens=ct, completion_tokens=comp, latency_s=latency, error=error, extra=json.loads(extra),
            )  # fmt: skip
        except (ValueError, TypeError) as exc:  # pragma: no cover - a row that hashes right was stored right
            raise StoreError(f"judgement {key} in {self.path} cannot be read ({exc}); {hint}") from exc

    # ------------------------------------------------------------------ writes

    def put(
        self,
        key: str,
        judgement: Judgement,
        *,
        prompt_id: str,
        prompt: Prompt,
        first: int,
        second: int,
        first_text: str,
        second_text: str,
        judge_identity: Mapping[str, Any],
    ) -> None:
        """Store one judge sample. ``key`` must be
        ``key(judge_identity, prompt, first_text, second_text, judgement.sample)`` (checked:
        ValueError otherwise); ``first``/``second`` are the candidate indices of the texts shown
        first/second, and ``prompt_id`` the input's id (both bookkeeping for export).

        The put is pending at once (reads see it) and committed by the writer thread within
        ``flush_interval_s``. A put for a
        key that already holds a non-error judgement is ignored (the first paid judgement wins);
        a put over an ERROR replaces it. Raises :class:`StoreError` when an earlier commit failed
        (disk full, read-only, locked too long): the judgement stays pending and is retried by the
        next commit, and the caller should stop paying for judgements it cannot save.
        """
        _check_text("first_text", first_text)
        _check_text("second_text", second_text)
        judge_json = canonical_json(judge_identity)
        prompt_json = canonical_json(prompt)
        judge_hash, prompt_hash = _sha256(judge_json), _sha256(prompt_json)
        first_hash, second_hash = _sha256(first_text), _sha256(second_text)
        sample = _check_sample(getattr(judgement, "sample", None))
        expected = _key_from_hashes(judge_json, prompt_hash, first_hash, second_hash, sample)
        if key != expected:
            raise ValueError(
                f"key {key!r} does not match the content (expected {expected!r}); "
                "compute it with JudgementStore.key(judge_identity, prompt, first_text, second_text, judgement.sample)"
            )
        self._put_hashed(key, judgement, prompt_id, first, second, judge_json, judge_hash, prompt_json, prompt_hash,
                         first_text, first_hash, second_text, second_hash)  # fmt: skip

    def _put_hashed(
        self, key: str, judgement: Judgement, prompt_id: str, first: int, second: int, judge_json: str,
        judge_hash: str, prompt_json: str, prompt_hash: str, first_text: str, first_hash: str, second_text: str,
        second_hash: str,
    ) -> None:  # fmt: skip
        """:meth:`put` for a caller that computed the canonical texts and digests with this
        module's recipe already (the scheduler's cache: each text hashed once per prompt)."""
        if not isinstance(judgement, Judgement):
            raise TypeError(f"judgement must be a Judgement, got {type(judgement).__name__}")
        if not isinstance(prompt_id, str):
            raise TypeError(f"prompt_id must be a str, got {type(prompt_id).__name__}")
        sample = judgement.sample
        if type(sample) is not int:
            sample = _check_sample(sample)
        extra, outcome = judgement.extra, judgement.outcome
        logical = (
            key, judge_hash, prompt_id, prompt_hash, int(first), int(second), first_hash, second_hash, sample,
            _OUTCOME_VALUES.get(outcome) or Outcome(outcome).value, str(judgement.reasoning), str(judgement.verdict),
            int(judgement.prompt_tokens), int(judgement.cached_tokens), int(judgement.completion_tokens),
            _finite(judgement.latency_s), None if judgement.error is None else str(judgement.error),
            canonical_json(extra) if extra else "{}", time.time(),
        )  # fmt: skip
        p = _Put(key, judgement, judge_json, judge_hash, prompt_json, prompt_hash, first_text, first_hash,
                 second_text, second_hash, logical)  # fmt: skip
        with self._lock:
            if self._stopping or self._conn is None or self.readonly:
                self._check_writable()  # (says which)
            old = self._pending.get(key)
            if old is None or old.judgement.outcome is Outcome.ERROR:  # first paid judgement wins, as in the table
                self._put_seq += 1
                p.seq = self._put_seq
                self._pending[key] = p
                self._queue.append(p)
                if self._dirty_since is None:
                    self._dirty_since = time.monotonic()
                    self._cond.notify_all()
                elif len(self._queue) >= self.batch_size:
                    self._cond.notify_all()
            if self._error is not None:
                raise self._error

    def flush(self) -> None:
        """Wait until every put made before this call is committed. On failure the puts stay
        pending (a later flush retries them) and :class:`StoreError` says why; everything
        committed before stays."""
        with self._lock:
            if self.readonly or self._committer is None:
                self._connection()
                return
            target = self._put_seq
            if self._committed_seq >= target:
                return
            asked = self._attempts
            self._flushes += 1
            self._flush_wanted = max(self._flush_wanted, target)
            self._cond.notify_all()
            while self._committed_seq < target:
                if self._error is not None and self._error_attempt > asked:
                    raise self._error
                if self._thread is None or not self._thread.is_alive():
                    raise self._closed_error or StoreError(f"judgement store {self.path} is closed")
                self._cond.wait(0.5)

    # ------------------------------------------------------------------ claims

    def claim(self, key: str, prompt_hash: str | None = None) -> concurrent.futures.Future:
        """Lease ``key`` (a sha256 hex digest naming some work: the scheduler's cache names one
        judge's work on one prompt) to this store, and learn what of that work is stored.

        Returns a future of the frozenset of the keys of the stored (committed, non-error)
        judgements whose prompt text has the sha256 hex ``prompt_hash``, plus this store's
        pending ones (empty without a ``prompt_hash``), computed in the write transaction that
        takes the lease: while it is held, every other judgement of that work is missing, and no
        other run that asks for the lease adds it. While another live owner holds ``key`` (or this
        store holds it already), nothing is leased and the future stays pending; the request is
        re-examined every ``poll_s`` seconds, and a lease whose owner died or expired is taken
        over. The future raises :class:`StoreError` when the store cannot be written. Give the
        lease back with :meth:`release` once the work's judgements are put (or :meth:`close`).
        Cancelling the future withdraws a request that is still waiting; release ``key`` in case
        it was granted meanwhile.
        """
        if _blob(key) is None:
            raise ValueError(f"a claim key must be a sha256 hex digest, got {key!r}")
        if prompt_hash is not None and _blob(prompt_hash) is None:
            raise ValueError(f"prompt_hash must be a sha256 hex digest, got {prompt_hash!r}")
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._check_writable()
            if self._error is not None:
                future.set_exception(self._error)
                return future
            self._requests.append(_ClaimRequest(key, prompt_hash, future))
            if len(self._requests) == 1:
                self._requests_since = time.monotonic()
                self._cond.notify_all()
        return future

    def release(self, keys: Iterable[str]) -> None:
        """Give back this store's leases on ``keys``: another run may take them now. The release
        is committed after every put made before it (a run that takes the lease over sees those
        judgements). Keys without a lease of this store are ignored."""
        with self._lock:
            if self._committer is None:
                return
            for k in keys:
                self._held.discard(k)
                self._releases.append(k)
            if self._releases and self._dirty_since is None:
                self._dirty_since = time.monotonic()
                self._cond.notify_all()

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Commit pending puts, give back every lease of this store, and close the file.
        Idempotent. If the final commit fails the file is closed anyway (committed judgements
        are safe) and :class:`StoreError` says how many pending judgements were not saved."""
        with self._lock:
            if self._conn is None:
                return
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._stop_sync.set()
        if self._syncer is not None and self._syncer is not threading.current_thread():
            self._syncer.join()
        with self._lock:
            if self._conn is None:
                return
            lost = len(self._pending)
            failure = self._closed_error
            conns = (self._sconn, self._conn)
            self._conn = self._sconn = None
        self._close_committer()  # (the writer thread closed it, unless it never ran)
        with self._lock:
            for c in conns:  # the last one checkpoints and removes the WAL
                if c is not None:
                    with contextlib.suppress(sqlite3.Error):  # closing never fails in practice
                        c.close()
            self._pending.clear()
            self._queue.clear()
            orphans = self._requests + self._waiting
            self._requests, self._waiting = [], []
            _OPEN_STORES.discard(self)
        for req in orphans:  # outside the lock: their callbacks may call back
            _resolve(req.future, StoreError(f"judgement store {self.path} is closed"))
        if failure is not None and lost:
            raise StoreError(
                f"{lost} pending judgements were NOT saved when closing {self.path}: {failure}"
            ) from failure

    def __enter__(self) -> JudgementStore:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "readwrite"
        state = "closed" if self._conn is None else f"{len(self._pending)} pending"
        return f"JudgementStore({self.path!r}, {mode}, {state})"

    # ------------------------------------------------------------------ the writer thread

    def _work_due(self, now: float) -> float | None:
        """None when the writer has work now, else how long it may sleep (seconds). Called with
        the lock held."""
        if self._stopping:
            return None
        waits = [self.lease_s / 4]
        if self._requests:  # claims wait a little for company: one transaction for many (they are asked ahead)
            due = (self._requests_since or now) + self.claim_delay_s
            if now >= due or self._flush_wanted > self._committed_seq:
                return None
            waits.append(due - now)
        if self._queue or self._releases:
            if self._error is not None:  # a failed commit: retry when asked, or after a pause
                if self._flushes > self._error_flushes or now >= self._retry_at:
                    return None
                waits.append(self._retry_at - now)
            elif self._flush_wanted > self._committed_seq or len(self._queue) >= self.batch_size:
                return None
            elif self.flush_interval_s is not None:
                due = (self._dirty_since or now) + self.flush_interval_s
                if now >= due:
                    return None
                waits.append(due - now)
        if self._waiting:
            if now >= self._next_poll:
                return None
            waits.append(self._next_poll - now)
        if self._held:
            if now >= self._next_renew:
                return None
            waits.append(self._next_renew - now)
        return max(0.0, min(waits))

    def _writer_main(self) -> None:
        """The writer thread: one transaction per cycle for everything waiting (see the module
        docstring), run by the store's Committer; exits after the final cycle of :meth:`close`."""
        while True:
            with self._lock:
                while True:
                    sleep = self._work_due(time.monotonic())
                    if sleep is None:
                        break
                    self._cond.wait(sleep)
                final = self._stopping
                now = time.monotonic()
                puts = list(self._queue) if final else self._queue[: self.batch_size]
                releases = list(self._releases)
                requests = [r for r in self._requests if not r.future.cancelled()]
                self._requests = []
                self._requests_since = None
                if self._waiting and (now >= self._next_poll or final):
                    requests += [r for r in self._waiting if not r.future.cancelled()]
                    self._waiting = []
                    self._next_poll = now + self.poll_s
                renew = bool(self._held) and now >= self._next_renew
                self._attempts += 1
                attempt = self._attempts
                taken = [r.key for r in requests if r.key in self._held]
                pending = self._pending_by_prompt(requests)
            results: list[frozenset | None] = []
            if puts or releases or requests or renew or final:
                try:
                    results = self._commit(puts, releases, requests, renew, final, taken, pending)
                except Exception as exc:  # a failed cycle must reach put/flush/claim/close, never end the thread
                    if not isinstance(exc, StoreError):
                        log.exception("the writer of the judgement store %s failed", self.path)
                        exc = StoreError(
                            f"the writer of the judgement store {self.path} failed: {type(exc).__name__}: {exc}"
                        )
                    self._after_failure(exc, attempt, requests, final)
                    if final:
                        self._close_committer()
                        return
                    continue
            self._after_commit(puts, releases, requests, renew, results)
            if final:
                self._close_committer()
                self._sync()  # what close() committed survives a power loss too
                return

    def _pending_by_prompt(self, requests: list[_ClaimRequest]) -> dict[str, list[str]]:
        """prompt hash -> keys of this store's uncommitted non-error puts, for the prompts of
        ``requests`` (a claim counts them as stored). Called with the lock held."""
        hashes = {r.prompt_hash for r in requests if r.prompt_hash}
        out: dict[str, list[str]] = {}
        if hashes and self._pending:
            for p in self._pending.values():
                if p.prompt_hash in hashes and p.judgement.outcome is not Outcome.ERROR:
                    out.setdefault(p.prompt_hash, []).append(p.key)
        return out

    def _commit(self, puts, releases, requests, renew, final, taken, pending) -> list[frozenset | None]:
        """One write transaction for the whole cycle (the Committer's, in the writer process or
        here): the rows, the releases, the claim requests, the renewal, and at close every claim
        of this owner. Returns each request's result (None: wait). Raises :class:`StoreError`."""
        committer = self._committer
        assert committer is not None
        wire = [
            (p.key, p.judge_json, p.judge_hash, p.prompt_json, p.prompt_hash, p.first_text, p.first_hash,
             p.second_text, p.second_hash, p.logical)
            for p in puts
        ]  # fmt: skip
        asked = [(r.key, r.prompt_hash) for r in requests]
        what = f"committing {len(puts)} judgements to" if puts else "claiming keys in"
        try:
            with self._wire_lock:
                return committer.commit(wire, releases, asked, renew, final, taken, pending)
        except sqlite3.Error as exc:
            raise self._store_error(exc, what) from exc

    def _start_committer(self) -> Committer | _WriterProcess:
        """The writer's Committer: in a process of its own (``writer="process"``, falling back to
        the thread with a warning where no process can be started) or on the writer thread."""
        # an absolute path: a writer process started again later must not follow a chdir
        args = (
            os.path.abspath(self.path),
            self.owner,
            self._host_id,
            self.lease_s,
            self.timeout_s,
            _COMPRESS_MIN_CHARS,
        )
        if self.writer == "process":
            try:
                return _WriterProcess(args)
            except sqlite3.Error as exc:  # the store itself cannot be written: no thread would do better
                raise self._store_error(exc, "opening") from exc
            except (OSError, subprocess.SubprocessError, StoreError) as exc:
                log.warning(
                    "cannot start a writer process for the judgement store %s (%s): committing on a thread "
                    "instead (slower with a fast judge)", self.path, exc,
                )  # fmt: skip
                self.writer = "thread"
        try:
            return Committer(*args)
        except sqlite3.Error as exc:
            raise self._store_error(exc, "opening") from exc

    def _close_committer(self) -> None:
        with self._wire_lock:
            committer, self._committer = self._committer, None
            if committer is not None:
                committer.close()

    def _writer_sql(self, statement: str) -> list[tuple]:
        """Run ``statement`` on the writer's connection, wherever it lives (tests: a pragma such as
        ``max_page_count`` that makes the writer's commits fail as on a full disk)."""
        with self._wire_lock:
            if self._committer is None:
                raise StoreError(f"judgement store {self.path} is closed or read-only")
            try:
                return self._committer.sql(statement)
            except sqlite3.Error as exc:
                raise self._store_error(exc, "running a statement on") from exc

    def _after_commit(self, puts, releases, requests, renew, results) -> None:
        resolved: list[tuple[concurrent.futures.Future, Any]] = []
        with self._lock:
            if puts:
                self._commits += 1
                del self._queue[: len(puts)]
                for p in puts:
                    key = p.key
                    if self._pending.get(key) is p:
                        del self._pending[key]
                self._committed_seq = self._queue[0].seq - 1 if self._queue else self._put_seq
            del self._releases[: len(releases)]
            self._dirty_since = time.monotonic() if (self._queue or self._releases) else None
            if renew:
                self._next_renew = time.monotonic() + self.lease_s / 4
            for req, got in zip(requests, results):
                if got is None:  # another owner holds it: re-examined every poll_s
                    if not req.future.cancelled():
                        self._waiting.append(req)
                        if len(self._waiting) == 1:
                            self._next_poll = time.monotonic() + self.poll_s
                    continue
                if isinstance(got, frozenset):
                    if req.future.cancelled():
                        # withdrawn while this transaction took it: its owner's release (asked
                        # after the cancel, committed next cycle) deletes the row; it is not held
                        continue
                    self._held.add(req.key)
                resolved.append((req.future, got))
            self._error = None
            self._cond.notify_all()
        for future, got in resolved:  # outside the lock: callbacks may run here
            _resolve(future, got)

    def _after_failure(self, exc, attempt, requests, final) -> None:
        with self._lock:
            self._error = exc
            self._error_attempt = attempt
            self._error_flushes = self._flushes
            self._retry_at = time.monotonic() + 1.0
            if final:
                self._closed_error = exc
            self._cond.notify_all()
        for req in requests:
            _resolve(req.future, exc)

    def _sync(self) -> None:
        """fsync the WAL: every commit made before survives a power loss (no-op unless durable)."""
        if not self.durable:
            return
        with self._lock:
            commits = self._commits
        if commits <= self._synced:
            return
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except FileNotFoundError:
            pass  # checkpointed and removed: the database file holds it, synced by the checkpoint
        except OSError as exc:  # a platform that cannot fsync a read-only handle: say so once
            if not self._sync_warned:
                self._sync_warned = True
                log.warning(
                    "cannot fsync %s-wal (%s): commits survive a process kill, not a power loss", self.path, exc
                )
        self._synced = commits

    def _syncer_main(self) -> None:
        """The sync thread: fsyncs the WAL every ``sync_interval_s`` after commits (durable
        stores), and copies the WAL into the database once it passes half of
        ``_CHECKPOINT_BYTES`` (a PASSIVE checkpoint, on its own connection: it never blocks the
        writer, so commits keep their pace; both used to run inside the writer's commits and
        held a kill's losses back). A WAL being written never ends fully copied, so the writer
        itself finishes the checkpoint between two commits once the WAL passes
        ``_CHECKPOINT_BYTES`` (little is left to copy by then), and its next commit starts the
        WAL over: the file stays bounded, as does its index SQLite maps into memory (an 8 GB WAL
        after 20k prompts, and ~25 MB of RSS, before this)."""
        conn = self._sconn
        assert conn is not None
        interval = min(self.sync_interval_s, 1.0)
        while not self._stop_sync.wait(interval):
            self._sync()
            try:
                if os.path.getsize(self.path + "-wal") > _CHECKPOINT_BYTES // 2:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except (OSError, sqlite3.Error) as exc:  # the writer reports a store that stopped working
                log.debug("checkpoint of %s skipped: %s", self.path, exc)

    # ------------------------------------------------------------------ inspection

    def stats(self) -> dict[str, Any]:
        """Counts of committed rows: ``judgements``, ``outcomes`` (every outcome value, zeros
        included), ``judges``, ``prompts`` (distinct prompt ids), ``texts``, summed ``tokens``
        (prompt/cached/completion), ``claims`` (leases in the file, any owner), ``pending``
        (put, not yet committed), ``held`` (this store's leases), versions."""
        with self._rlock:
            conn = self._connection()
            try:
                outcomes = {o.value: 0 for o in Outcome}
                outcomes.update(conn.execute("SELECT outcome, count(*) FROM judgements GROUP BY outcome"))
                pt, ct, comp = conn.execute(
                    "SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(cached_tokens), 0), "
                    "coalesce(sum(completion_tokens), 0) FROM judgements"
                ).fetchone()
                counts = {
                    name: conn.execute(sql).fetchone()[0]
                    for name, sql in (
                        ("judges", "SELECT count(*) FROM judges"),
                        ("prompts", "SELECT count(DISTINCT prompt_id) FROM judgements"),
                        ("texts", "SELECT count(*) FROM texts"),
                        ("claims", "SELECT count(*) FROM claims"),
                    )
                }
            except sqlite3.Error as exc:
                raise self._store_error(exc, "reading") from exc
        with self._lock:
            pending, held = len(self._pending), len(self._held)
        return {
            "path": self.path,
            "schema_version": SCHEMA_VERSION,
            "key_version": KEY_VERSION,
            "judgements": sum(outcomes.values()),
            "outcomes": outcomes,
            **counts,
            "tokens": {"prompt": pt, "cached": ct, "completion": comp},
            "pending": pending,
            "held": held,
        }

    def check(self) -> list[str]:
        """Verify the whole store; return the problems found (empty when healthy).

        Commits pending puts first, then checks: SQLite ``PRAGMA integrity_check``; application
        id, schema and key versions; every judge identity and text against its sha256; every
        row's references, its key recomputed from the stored judge, prompt, texts and sample, and
        its ``row_hash`` (so an edited outcome, reasoning or token count is reported); and no
        orphan texts or judges. Reads every row: seconds for ~100k judgements.
        """
        self.flush()
        problems: list[str] = []
        with self._rlock:
            conn = self._connection()
            try:
                self._check(conn, problems)
            except sqlite3.Error as exc:
                problems.append(f"cannot read the store: {exc}")
        return problems

    def _check(self, conn: sqlite3.Connection, problems: list[str]) -> None:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems.extend(f"integrity_check: {line}" for line in integrity[:_MAX_PROBLEMS])
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            problems.append(f"application_id is {app_id}, expected {APPLICATION_ID}")
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        if user_version != SCHEMA_VERSION:
            problems.append(f"user_version is {user_version}, expected schema version {SCHEMA_VERSION}")
        problems.extend(self._meta_problems(dict(conn.execute("SELECT name, value FROM meta"))))

        counts: dict[str, int] = {}

        def report(kind: str, message: str) -> None:
            counts[kind] = counts.get(kind, 0) + 1
            if counts[kind] <= _MAX_PROBLEMS:
                problems.append(message)

        conn.execute("BEGIN")  # one snapshot for the whole check
        try:
            judges: dict[int, tuple[str, str]] = {}  # id -> (hash hex, identity)
            for i, h, identity in conn.execute("SELECT id, hash, identity FROM judges"):
                judges[i] = (h.hex(), identity)
                if _sha256(identity) != h.hex():
                    report("judge", f"judge {h.hex()}: identity does not match its hash (edited?)")
            texts: dict[int, str] = {}  # id -> hash hex
            for i, h, body in conn.execute("SELECT id, hash, body FROM texts"):
                texts[i] = h.hex()
                try:
                    bad = _sha256(_unpack(body)) != h.hex()
                except (zlib.error, UnicodeDecodeError, TypeError):
                    bad = True
                if bad:
                    report("text", f"text {h.hex()}: body does not match its hash (edited?)")
            used_texts: set[int] = set()
            used_judges: set[int] = set()
            sql = (
                "SELECT key, judge_id, prompt_id, prompt_text_id, first_index, second_index, first_text_id, "
                "second_text_id, sample, outcome, reasoning, verdict, prompt_tokens, cached_tokens, "
                "completion_tokens, latency_s, error, extra, created, row_hash FROM judgements ORDER BY id"
            )
            for r in conn.execute(sql):
                key = r[0].hex() if isinstance(r[0], bytes) else str(r[0])
                jid, pid_, fid, sid = r[1], r[3], r[6], r[7]
                used_judges.add(jid)
                used_texts.update((pid_, fid, sid))
                missing = [f"judge {jid}"] if jid not in judges else []
                missing += [
                    f"{what} text {t}"
                    for what, t in (("prompt", pid_), ("first", fid), ("second", sid))
                    if t not in texts
                ]
                if missing:
                    report("missing", f"judgement {key}: references missing {', '.join(missing)}")
                    continue
                jh, identity = judges[jid]
                if _key_from_hashes(identity, texts[pid_], texts[fid], texts[sid], r[8]) != key:
                    report("key", f"judgement {key}: key mismatch (judge, prompt, texts or sample edited)")
                try:
                    logical = (key, jh, r[2], texts[pid_], r[4], r[5], texts[fid], texts[sid], r[8], r[9],
                               _unpack(r[10]), *r[11:19])  # fmt: skip
                    ok = _row_hash(logical) == r[19]
                except (zlib.error, UnicodeDecodeError, TypeError, ValueError):
                    ok = False
                if not ok:
                    report("row", f"judgement {key}: row hash mismatch (outcome, reasoning, tokens ... edited)")
            for i, h in texts.items():
                if i not in used_texts:
                    report("orphan text", f"text {h}: orphan (no judgement uses it)")
            for i, (h, _) in judges.items():
                if i not in used_judges:
                    report("orphan judge", f"judge {h}: orphan (no judgement uses it)")
        finally:
            conn.execute("COMMIT")
        problems.extend(
            f"... and {c - _MAX_PROBLEMS} more {kind} problems" for kind, c in counts.items() if c > _MAX_PROBLEMS
        )

    def export(self, prompt_id: str | None = None, *, include_errors: bool = False) -> Iterator[dict[str, Any]]:
        """Stored judgements as JSON-ready dicts, in insertion order (pending puts are committed
        first), optionally only those of ``prompt_id`` (a scan: rows are indexed by prompt text,
        which claims read, not by id); ERROR rows only with ``include_errors``.

        Each dict is a replay-format record (``prompt`` (str or messages), ``first``, ``second``
        (the response texts in presentation order), ``verdict``: ``"A"`` (first shown won),
        ``"B"``, ``"tie"``, or None for an abstention or error) plus ``prompt_id``,
        ``first_index``, ``second_index``, ``sample``, ``outcome``, ``reasoning``,
        ``verdict_text``, ``tokens`` ({prompt, cached, completion}), ``latency_s``, ``error``,
        ``extra``, ``judge`` (the identity), ``key`` and ``created`` (unix seconds).
        """
        self.flush()
        conditions = ["j.id > ?"]
        params: list[Any] = []
        if prompt_id is not None:
            conditions.append("j.prompt_id = ?")
            params.append(prompt_id)
        if not include_errors:
            conditions.append(f"j.outcome != '{_ERROR}'")
        sql = (
            "SELECT j.id, j.key, j.prompt_id, p.body, j.first_index, j.second_index, f.body, s.body, j.sample, "
            "j.outcome, j.reasoning, j.verdict, j.prompt_tokens, j.cached_tokens, j.completion_tokens, "
            "j.latency_s, j.error, j.extra, j.created, g.identity FROM judgements j "
            "LEFT JOIN texts p ON p.id = j.prompt_text_id LEFT JOIN texts f ON f.id = j.first_text_id "
            "LEFT JOIN texts s ON s.id = j.second_text_id LEFT JOIN judges g ON g.id = j.judge_id "
            f"WHERE {' AND '.join(conditions)} ORDER BY j.id LIMIT {_CHUNK}"
        )
        last_id = 0
        parsed: dict[Any, Any] = {}  # small caches: a prompt and a judge repeat over many rows
        while True:
            # page by id, lock held per page only: the consumer may be slow or write meanwhile
            with self._rlock:
                conn = self._connection()
                try:
                    page = conn.execute(sql, [last_id, *params]).fetchall()
                except sqlite3.Error as exc:
                    raise self._store_error(exc, "reading") from exc
            if not page:
                return
            for r in page:
                (last_id, key, pid, prompt_body, fi, si, first_body, second_body, sample, outcome, reasoning,
                 verdict_text, pt, ct, comp, latency, error, extra, created, identity) = r  # fmt: skip
                key = key.hex()
                if None in (prompt_body, first_body, second_body, identity):
                    raise StoreError(f"judgement {key} in {self.path} references a missing text or judge; run check()")
                if len(parsed) > 64:
                    parsed.clear()
                if prompt_body not in parsed:
                    parsed[prompt_body] = json.loads(_unpack(prompt_body))
                if identity not in parsed:
                    parsed[identity] = json.loads(identity)
                yield {
                    "prompt": parsed[prompt_body],
                    "first": _unpack(first_body),
                    "second": _unpack(second_body),
                    # the replay judge's format: A, B, tie or abstain; an error has no verdict
                    "verdict": outcome if outcome != "error" else None,
                    "prompt_id": pid,
                    "first_index": fi,
                    "second_index": si,
                    "sample": sample,
                    "outcome": outcome,
                    "reasoning": _unpack(reasoning),
                    "verdict_text": verdict_text,
                    "tokens": {"prompt": pt, "cached": ct, "completion": comp},
                    "latency_s": latency,
                    "error": error,
                    "extra": json.loads(extra),
                    "judge": parsed[identity],
                    "key": key,
                    "created": created,
                }

    # ------------------------------------------------------------------ internals

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"judgement store {self.path} is closed")
        return self._conn

    def _check_writable(self) -> None:
        self._connection()
        if self.readonly:
            raise StoreError(f"judgement store {self.path} was opened read-only; it cannot store judgements")
        if self._stopping:
            raise StoreError(f"judgement store {self.path} is closing")

    def _store_error(self, exc: BaseException, action: str) -> StoreError:
        """A :class:`StoreError` that says what went wrong in words a user can act on."""
        kind = _store_writer._error_kind(exc)
        where = f"{action} the judgement store {self.path}"
        pending = ""
        if self._pending:
            pending = f"; {len(self._pending)} judgements stay pending and the next flush() retries them"
        if kind.startswith("SQLITE_FULL"):
            return StoreError(f"disk full while {where} ({exc}); judgements committed before are safe{pending}")
        if kind.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return StoreError(
                f"the store is read-only or cannot be opened while {where} ({exc}): check the permissions of "
                f"the file and of its directory (SQLite keeps -wal and -shm files beside it); open it with "
                f"readonly=True to read it{pending}"
            )
        if kind.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return StoreError(f"{self.path} is corrupted or not an SQLite database ({exc}) while {action} it")
        if _is_busy(exc):
            return StoreError(
                f"another process held the write lock of {self.path} for more than {self.timeout_s:g} s while "
                f"{action} it ({exc}){pending}"
            )
        return StoreError(f"SQLite error while {where}: {exc} [{kind}]{pending}")

    def _write_transaction(self, conn: sqlite3.Connection, fn: Callable[[], object], action: str) -> None:
        """:func:`~tourney._store_writer.write_transaction` (``BEGIN IMMEDIATE``, retried on
        SQLITE_BUSY until ``timeout_s``), its failure worded by :meth:`_store_error`."""
        try:
            write_transaction(conn, fn, self.timeout_s)
        except sqlite3.Error as exc:
            raise self._store_error(exc, action) from exc

    def _connect(self, mode: str) -> sqlite3.Connection:
        try:
            return _sqlite_connect(self.path, mode, self.timeout_s)
        except sqlite3.Error as exc:
            raise self._store_error(exc, "opening") from exc

    def _open(self, check_on_open: bool) -> sqlite3.Connection:
        path = self.path
        exists = os.path.exists(path)
        if self.readonly and not exists:
            raise StoreError(f"no judgement store at {path}")
        if exists:
            if os.path.isdir(path):
                raise StoreError(f"{path} is a directory, not a judgement store")
            try:
                with open(path, "rb") as fh:
                    head = fh.read(len(_SQLITE_MAGIC))
            except OSError as exc:
                raise StoreError(f"cannot read the judgement store {path}: {exc}") from exc
            if head and head != _SQLITE_MAGIC:
                raise StoreError(
                    f"{path} is not a tourney judgement store (not an SQLite database); refusing to use it"
                )
        elif not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise StoreError(f"cannot create the judgement store {path}: its directory does not exist")
        mode = "ro" if self.readonly else "rwc"
        if self.readonly and self._needs_immutable():
            mode += "&immutable=1"
        conn = self._connect(mode)
        self._conn = conn
        try:
            self._initialise_or_verify(conn, check_on_open)
            if not self.readonly:
                # a real write at open: a read-only file or directory is reported now, not at the
                # first commit after an hour of judging
                self._write_transaction(
                    conn, lambda: conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_opened', ?)", (_now(),)),
                    "opening",
                )  # fmt: skip
        except BaseException as exc:
            self._conn = None
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._store_error(exc, "opening") from exc
            raise
        return conn

    def _needs_immutable(self) -> bool:
        """Whether a read-only open must use SQLite's ``immutable`` flag: a WAL store can only be
        read through its ``-shm`` index, which SQLite cannot create in a read-only directory (a
        read-only mount, an archived run). That is safe only when no ``-wal`` content exists (the
        last writer closed cleanly): nothing can write there meanwhile, and nothing is skipped."""
        directory = os.path.dirname(os.path.abspath(self.path))
        if os.access(directory, os.W_OK) or os.path.exists(self.path + "-shm"):
            return False
        wal = self.path + "-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise StoreError(
                f"cannot read {self.path}: its directory is read-only and it has uncheckpointed writes in "
                f"{wal}; copy the store together with its -wal file to a writable directory"
            )
        return True

    def _initialise_or_verify(self, conn: sqlite3.Connection, check_on_open: bool) -> None:
        # one read snapshot for both: another process may be creating the store right now, and its
        # tables and application_id become visible together, at its commit
        conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            conn.execute("COMMIT")
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise StoreError(
                f"{self.path} is an SQLite database but not a tourney judgement store "
                f"(application_id {app_id}, tables {tables}); refusing to use it"
            )
        if tables:
            try:
                meta = dict(conn.execute("SELECT name, value FROM meta"))
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path} is not a tourney judgement store (no meta table: {exc})") from exc
            # refused before anything (WAL mode included) touches the file
            problems = self._meta_problems(meta, upgradable=not self.readonly)
            if problems:
                raise StoreError(
                    f"cannot use the judgement store {self.path}: {'; '.join(problems)}. The file was not modified."
                )
        if check_on_open and tables:
            result = [r[0] for r in conn.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise StoreError(f"{self.path} is corrupted (quick_check: {'; '.join(result[:5])}); refusing to use it")
        if not self.readonly:
            if not tables:
                conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")  # before WAL mode, which fixes it
            self._set_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        if not tables:
            if self.readonly:
                raise StoreError(f"{self.path} is an empty database, not a tourney judgement store")

            def create() -> None:
                # re-checked under the write lock: another process may have created it meanwhile
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    return
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (name, value) VALUES (?, ?)",
                    [
                        ("application", _APPLICATION), ("schema_version", str(SCHEMA_VERSION)),
                        ("key_version", str(KEY_VERSION)), ("created", _now()),
                        ("sqlite_version", sqlite3.sqlite_version),
                    ],
                )  # fmt: skip

            self._write_transaction(conn, create, "creating")
        meta = dict(conn.execute("SELECT name, value FROM meta"))
        if meta.get("schema_version") == "1" and not self.readonly:
            self._upgrade_from_v1(conn)

    def _upgrade_from_v1(self, conn: sqlite3.Connection) -> None:
        """Rewrite a schema-1 store as schema 2 in place, in one transaction (a crash leaves it
        at version 1): digests become BLOBs and texts/judges integer ids, long texts are
        compressed, every judgement keeps its id, key and row hash (the recipe is the same), and a
        ``claims`` table is added. A v1 row that references a missing text stops the upgrade."""
        n = conn.execute("SELECT count(*) FROM judgements").fetchone()[0]
        log.warning("upgrading the judgement store %s (%d judgements) from schema version 1 to %d, once",
                    self.path, n, SCHEMA_VERSION)  # fmt: skip
        conn.create_function("tourney_unhex", 1, lambda h: None if h is None else bytes.fromhex(h), deterministic=True)
        conn.create_function("tourney_pack", 1, lambda t: None if t is None else _pack(t), deterministic=True)
        new_tables = [s.strip() for s in _SCHEMA.split(";") if s.strip().startswith(("CREATE TABLE", "CREATE INDEX"))]

        def upgrade() -> None:
            if conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0] != "1":
                return  # another process upgraded it meanwhile
            for t in ("judges", "texts", "judgements"):
                conn.execute(f"ALTER TABLE {t} RENAME TO v1_{t}")
            conn.execute("DROP INDEX judgements_prompt")
            for statement in new_tables:
                if not statement.startswith("CREATE TABLE meta"):
                    conn.execute(statement)
            conn.execute("INSERT INTO judges (hash, identity) SELECT tourney_unhex(hash), identity FROM v1_judges "
                         "ORDER BY rowid")  # fmt: skip
            conn.execute("INSERT INTO texts (hash, body) SELECT tourney_unhex(hash), tourney_pack(body) FROM v1_texts "
                         "ORDER BY rowid")  # fmt: skip
            conn.execute(
                f"INSERT INTO judgements ({', '.join(('id', *_COLUMNS))}) SELECT o.id, tourney_unhex(o.key), g.id, "
                "o.prompt_id, p.id, o.first_index, o.second_index, f.id, s.id, o.sample, o.outcome, "
                "tourney_pack(o.reasoning), o.verdict, o.prompt_tokens, o.cached_tokens, o.completion_tokens, "
                "o.latency_s, o.error, o.extra, o.created, tourney_unhex(o.row_hash) FROM v1_judgements o "
                "LEFT JOIN judges g ON g.hash = tourney_unhex(o.judge_hash) "
                "LEFT JOIN texts p ON p.hash = tourney_unhex(o.prompt_hash) "
                "LEFT JOIN texts f ON f.hash = tourney_unhex(o.first_hash) "
                "LEFT JOIN texts s ON s.hash = tourney_unhex(o.second_hash) ORDER BY o.id"
            )
            for t in ("judgements", "texts", "judges"):
                conn.execute(f"DROP TABLE v1_{t}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                [("schema_version", str(SCHEMA_VERSION)), ("upgraded_from_schema_1", _now())],
            )

        try:
            self._write_transaction(conn, upgrade, "upgrading (schema 1 to 2)")
        except StoreError as exc:
            if "NOT NULL constraint" in str(exc):
                raise StoreError(
                    f"cannot upgrade the judgement store {self.path} from schema version 1: a judgement references "
                    f"a missing text or judge ({exc}); the file was not modified. Check it with the tourney release "
                    "that wrote it (`tourney store check`)."
                ) from exc
            raise

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01 + 0.02 * random.random())
        if str(mode).lower() != "wal":
            raise StoreError(
                f"cannot put {self.path} in WAL mode (got {mode!r}); is it on a network file system? "
                "The store needs a local file system."
            )

    @staticmethod
    def _meta_problems(meta: Mapping[str, str], upgradable: bool = False) -> list[str]:
        if meta.get("application") != _APPLICATION:
            return [f"not a tourney judgement store (meta application is {meta.get('application')!r})"]
        problems = []
        version = meta.get("schema_version")
        if version == "1" and not upgradable:
            problems.append(
                "it has schema version 1 (written before claims and compact rows); open it once for writing to "
                f"upgrade it in place to version {SCHEMA_VERSION}: `tourney store upgrade PATH` (or any "
                "`tourney rank --store PATH` run)"
            )
        elif version not in ("1", str(SCHEMA_VERSION)):
            problems.append(
                f"it has schema version {version}, this tourney reads version {SCHEMA_VERSION} "
                "(use the matching tourney release, or a new store)"
            )
        if meta.get("key_version") != str(KEY_VERSION):
            problems.append(
                f"its keys are version {meta.get('key_version')}, this tourney computes version {KEY_VERSION}, "
                "so nothing in it would be reused"
            )
        return problems


def _resolve(future: concurrent.futures.Future, got: Any) -> None:
    if future.done():
        return
    try:
        if isinstance(got, BaseException):
            future.set_exception(got)
        else:
            future.set_result(got)
    except concurrent.futures.InvalidStateError:  # cancelled meanwhile
        pass


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
