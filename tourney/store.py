"""The persistent judgement store: every paid judge sample, content-addressed, in one SQLite file.

A tournament over a dataset costs GPU-days of judge time, so a judgement is paid for once and
never lost: the scheduler asks the store before calling the judge (:meth:`JudgementStore.get_many`)
and hands every new judgement to it (:meth:`JudgementStore.put`). A resumed or repeated run with
the same judge reuses everything already stored.

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

What is stored
    One row per key in ``judgements``: judge (by hash into ``judges``), prompt id, candidate
    indices, prompt and texts (by sha256 into ``texts``, so a prompt and its responses are stored
    once however many matches use them), sample, outcome, reasoning, verdict text, tokens,
    latency, error, extra (canonical JSON), creation time (unix seconds) and ``row_hash``, a
    sha256 over all of them (and the key), so :meth:`~JudgementStore.check` detects a row edited
    behind the store's back. The first put of a key wins, except that an ERROR row is replaced by
    any later put of the same key (an error is not a paid judgement, see below).

Errors and abstentions
    ERROR judgements are stored (for the record) but :meth:`~JudgementStore.get` and
    :meth:`~JudgementStore.get_many` skip them unless ``include_errors=True``, so a resumed run
    retries them. ABSTAIN judgements were paid for and are returned like votes.

Batching and durability
    :meth:`~JudgementStore.put` buffers in memory; the buffer is committed in one transaction every
    ``batch_size`` puts, by a background timer once the oldest buffered put is
    ``flush_interval_s`` old, and on :meth:`~JudgementStore.flush` / :meth:`~JudgementStore.close`
    / leaving the ``with`` block. Reads see buffered puts. What can be lost:

    * process killed (SIGKILL, OOM, crash): only puts not yet committed, i.e. at most the last
      ``batch_size`` puts or ``flush_interval_s`` seconds of them. Committed ones always survive.
    * power loss / OS crash: with ``durable=True`` (the default, ``synchronous=FULL``, one fsync per
      committed batch) the same as a process kill; with ``durable=False`` (``synchronous=NORMAL``)
      also commits since the last WAL checkpoint (SQLite checkpoints every 1000 pages, i.e. up to
      ~16 MB or a few thousand judgements). Never corruption.

Concurrency
    Several processes may write the same store at once and all succeed: WAL mode, short
    ``BEGIN IMMEDIATE`` write transactions, SQLite's busy timeout and a retry loop with backoff on
    SQLITE_BUSY; a writer blocked for more than ``timeout_s`` raises :class:`StoreError`. Puts are
    idempotent (first non-error put wins), so two runs that judge the same match store it once,
    but there is no cross-process claim: both of them pay for it. One store object may be shared
    by threads (it serialises on a lock), but not across ``fork``: open one per process.

Faults
    A file that is not a tourney store, a corrupted file, or a store written with another schema
    or key version raises :class:`StoreError` at open and is never modified (the open runs SQLite's
    ``quick_check``, ~0.2 s for 300 MB; damage inside a stored text or row that leaves the file
    structurally valid is what :meth:`~JudgementStore.check` finds, through the hashes). Disk full or a store
    that became read-only raises :class:`StoreError` from the put/flush that hit it; everything
    committed stays, and the failed batch stays buffered so a later :meth:`flush` can retry it.

Stdlib only (sqlite3, json, hashlib, threading), so importing it is cheap.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .errors import StoreError
from .hashing import sha256_hex as _sha256
from .types import Judgement, Outcome, Prompt

__all__ = ["JudgementStore", "KEY_VERSION", "SCHEMA_VERSION"]

#: Version of the table layout; a store with another version is refused at open.
SCHEMA_VERSION = 1
#: Version of the key recipe; bump it whenever :meth:`JudgementStore.key` changes.
KEY_VERSION = 1
#: SQLite ``PRAGMA application_id`` of a tourney store (ASCII "tour").
APPLICATION_ID = 0x746F7572
_APPLICATION = "tourney-judgement-store"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Keys per ``IN (...)`` query: well below SQLite's bound-parameter limit on every version.
_CHUNK = 500
#: SQLite page size of new stores (bytes)
_PAGE_SIZE = 16384
#: check() reports at most this many problems of one kind, then a count.
_MAX_PROBLEMS = 50

_SCHEMA = f"""
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE judges (
    hash     TEXT PRIMARY KEY,       -- sha256 of identity
    identity TEXT NOT NULL           -- canonical JSON of Judge.identity()
);
CREATE TABLE texts (
    hash TEXT PRIMARY KEY,           -- sha256 of body (UTF-8)
    body TEXT NOT NULL               -- a response text, or a prompt as canonical JSON
);
CREATE TABLE judgements (
    id                INTEGER PRIMARY KEY,
    key               TEXT NOT NULL UNIQUE,
    judge_hash        TEXT NOT NULL,
    prompt_id         TEXT NOT NULL,
    prompt_hash       TEXT NOT NULL,
    first_index       INTEGER NOT NULL,
    second_index      INTEGER NOT NULL,
    first_hash        TEXT NOT NULL,
    second_hash       TEXT NOT NULL,
    sample            INTEGER NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('A', 'B', 'tie', 'abstain', 'error')),
    reasoning         TEXT NOT NULL,
    verdict           TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s         REAL NOT NULL,
    error             TEXT,
    extra             TEXT NOT NULL,
    created           REAL NOT NULL,
    row_hash          TEXT NOT NULL
);
CREATE INDEX judgements_prompt ON judgements (prompt_id);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

# Columns of a judgements row in the order put() builds them (row_hash last).
_COLUMNS = (
    "key", "judge_hash", "prompt_id", "prompt_hash", "first_index", "second_index", "first_hash",
    "second_hash", "sample", "outcome", "reasoning", "verdict", "prompt_tokens", "cached_tokens",
    "completion_tokens", "latency_s", "error", "extra", "created", "row_hash",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO judgements ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    # an error is not a paid judgement: any later put replaces it; a real judgement is never replaced
    + " WHERE judgements.outcome = 'error'"
)
_JUDGEMENT_COLUMNS = (
    "key, outcome, reasoning, verdict, sample, prompt_tokens, cached_tokens, completion_tokens, "
    "latency_s, error, extra"
)
_ERROR = Outcome.ERROR.value


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
    return _sha256(text)


def _row_hash(row: Sequence[Any]) -> str:
    """sha256 over every stored column of a judgements row (the key included, row_hash excluded)."""
    return _sha256(canonical_json(list(row)))


def _check_sample(sample: Any) -> int:
    if isinstance(sample, bool) or not isinstance(sample, int):
        raise TypeError(f"sample must be an int, got {sample!r}")
    return sample


def _check_text(name: str, text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


def _error_kind(exc: BaseException) -> str:
    """SQLite's error name (``SQLITE_FULL`` ...), from the exception or, failing that, its text."""
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return name
    msg = str(exc).lower()
    for needle, kind in (
        ("disk is full", "SQLITE_FULL"), ("readonly", "SQLITE_READONLY"), ("locked", "SQLITE_BUSY"),
        ("busy", "SQLITE_BUSY"), ("not a database", "SQLITE_NOTADB"), ("malformed", "SQLITE_CORRUPT"),
        ("unable to open", "SQLITE_CANTOPEN"), ("disk i/o", "SQLITE_IOERR"),
    ):  # fmt: skip
        if needle in msg:
            return kind
    return "SQLITE_ERROR"


def _is_busy(exc: BaseException) -> bool:
    return _error_kind(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


class JudgementStore:
    """A persistent, content-addressed store of judge samples in one SQLite file (see the module
    docstring for keys, batching, durability, concurrency and faults).

    ``JudgementStore(path)`` opens the store at ``path``, creating it if the file does not exist
    (its directory must). ``readonly=True`` opens an existing store for reading only (export,
    stats, check; puts raise). ``batch_size`` puts, or ``flush_interval_s`` seconds since the
    oldest buffered put (``None``: no timer), trigger a commit. ``durable`` picks
    ``synchronous=FULL`` (survives power loss; one fsync per batch) over ``NORMAL``. A writer
    waits up to ``timeout_s`` seconds for another process's write lock. ``check_on_open`` runs
    SQLite's ``quick_check`` at open so a corrupted file is refused before it is used.

    Use it as a context manager, or call :meth:`close`: buffered puts are committed there.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        batch_size: int = 256,
        flush_interval_s: float | None = 1.0,
        durable: bool = True,
        timeout_s: float = 60.0,
        check_on_open: bool = True,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_interval_s is not None and flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0 or None, got {flush_interval_s}")
        self.path = os.fspath(path)
        self.readonly = readonly
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.durable = durable
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        # key -> (row tuple, judgement); texts / judges: hash -> body, for the next commit
        self._pending: dict[str, tuple[tuple[Any, ...], Judgement]] = {}
        self._pending_texts: dict[str, str] = {}
        self._pending_judges: dict[str, str] = {}
        self._oldest_pending = 0.0
        # hashes known to be committed already, so a prompt used by 15 matches is sent once
        self._stored_texts: set[str] = set()
        self._stored_judges: set[str] = set()
        self._background_error: StoreError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(check_on_open)
        if not readonly and flush_interval_s is not None:
            self._thread = threading.Thread(
                target=_flush_timer, args=(weakref.ref(self), self._stop, flush_interval_s),
                name=f"tourney-store-flush:{os.path.basename(self.path)}", daemon=True,
            )  # fmt: skip
            self._thread.start()

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
        """The stored judgement for ``key`` (buffered puts included), or None. ERROR judgements
        count as absent unless ``include_errors``, so a resumed run retries them."""
        return self.get_many([key], include_errors=include_errors).get(key)

    def get_many(self, keys: Iterable[str], *, include_errors: bool = False) -> dict[str, Judgement]:
        """The stored judgements for those of ``keys`` that have one (see :meth:`get`)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Judgement] = {}
        with self._lock:
            conn = self._connection()
            errors_pending: dict[str, Judgement] = {}
            to_query = []
            for k in wanted:
                hit = self._pending.get(k)
                if hit is None:
                    to_query.append(k)
                elif hit[1].outcome is Outcome.ERROR:
                    errors_pending[k] = hit[1]  # a committed real judgement would beat it
                    to_query.append(k)
                else:
                    found[k] = hit[1]
            where = "" if include_errors else f" AND outcome != '{_ERROR}'"
            try:
                for i in range(0, len(to_query), _CHUNK):
                    chunk = to_query[i : i + _CHUNK]
                    sql = (
                        f"SELECT {_JUDGEMENT_COLUMNS} FROM judgements "
                        f"WHERE key IN ({', '.join('?' * len(chunk))}){where}"
                    )
                    for row in conn.execute(sql, chunk):
                        found[row[0]] = _judgement_from_row(row)
            except sqlite3.Error as exc:
                raise self._store_error(exc, "reading") from exc
            if include_errors:
                for k, j in errors_pending.items():
                    if k not in found or found[k].outcome is Outcome.ERROR:
                        found[k] = j
        return {k: found[k] for k in wanted if k in found}

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

        The put is buffered and committed with its batch. A put for a key that already holds a
        non-error judgement is ignored (the first paid judgement wins); a put over an ERROR
        replaces it. Raises :class:`StoreError` when a commit it triggers fails (disk full,
        read-only, locked too long): the judgement then stays buffered and is retried by the
        next commit, and the caller should stop paying for judgements it cannot save.
        """
        if not isinstance(judgement, Judgement):
            raise TypeError(f"judgement must be a Judgement, got {type(judgement).__name__}")
        if not isinstance(prompt_id, str):
            raise TypeError(f"prompt_id must be a str, got {type(prompt_id).__name__}")
        sample = _check_sample(judgement.sample)
        _check_text("first_text", first_text)
        _check_text("second_text", second_text)
        judge_json = canonical_json(judge_identity)
        prompt_json = canonical_json(prompt)
        judge_hash, prompt_hash = _sha256(judge_json), _sha256(prompt_json)
        first_hash, second_hash = _sha256(first_text), _sha256(second_text)
        expected = _key_from_hashes(judge_json, prompt_hash, first_hash, second_hash, sample)
        if key != expected:
            raise ValueError(
                f"key {key!r} does not match the content (expected {expected!r}); "
                "compute it with JudgementStore.key(judge_identity, prompt, first_text, second_text, judgement.sample)"
            )
        outcome = Outcome(judgement.outcome).value
        values = (
            key, judge_hash, prompt_id, prompt_hash, int(first), int(second), first_hash, second_hash,
            sample, outcome, str(judgement.reasoning), str(judgement.verdict), int(judgement.prompt_tokens),
            int(judgement.cached_tokens), int(judgement.completion_tokens), float(judgement.latency_s),
            None if judgement.error is None else str(judgement.error), canonical_json(judgement.extra or {}),
            time.time(),
        )  # fmt: skip
        row = values + (_row_hash(values),)
        with self._lock:
            self._check_writable()
            old = self._pending.get(key)
            if old is not None and old[1].outcome is not Outcome.ERROR:
                return  # first paid judgement wins, as in the table
            if not self._pending:
                self._oldest_pending = time.monotonic()
            self._pending[key] = (row, judgement)
            if judge_hash not in self._stored_judges:
                self._pending_judges[judge_hash] = judge_json
            for h, body in ((prompt_hash, prompt_json), (first_hash, first_text), (second_hash, second_text)):
                if h not in self._stored_texts:
                    self._pending_texts[h] = body
            if (
                len(self._pending) >= self.batch_size
                or self._background_error is not None
                or (
                    self.flush_interval_s is not None
                    and time.monotonic() - self._oldest_pending >= self.flush_interval_s
                )
            ):
                self.flush()

    def flush(self) -> None:
        """Commit all buffered puts in one transaction. On failure the buffer is kept (a later
        flush retries it) and :class:`StoreError` says why; everything committed before stays."""
        with self._lock:
            if not self._pending or self.readonly:
                return
            conn = self._connection()
            texts = list(self._pending_texts.items())
            judges = list(self._pending_judges.items())
            rows = [row for row, _ in self._pending.values()]

            def write() -> None:
                if judges:
                    conn.executemany("INSERT OR IGNORE INTO judges (hash, identity) VALUES (?, ?)", judges)
                if texts:
                    conn.executemany("INSERT OR IGNORE INTO texts (hash, body) VALUES (?, ?)", texts)
                conn.executemany(_UPSERT, rows)

            try:
                self._write_transaction(write, f"committing {len(rows)} judgements to")
            except StoreError as exc:
                self._background_error = exc
                raise
            self._stored_texts.update(self._pending_texts)
            self._stored_judges.update(self._pending_judges)
            self._pending.clear()
            self._pending_texts.clear()
            self._pending_judges.clear()
            self._background_error = None

    def close(self) -> None:
        """Commit buffered puts and close the file. Idempotent. If the final commit fails the file
        is closed anyway (committed judgements are safe) and :class:`StoreError` says how many
        buffered judgements were not saved."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            if self._conn is None:
                return
            failure: StoreError | None = None
            try:
                self.flush()
            except StoreError as exc:
                failure = exc
            lost = len(self._pending)
            try:
                self._conn.close()
            except sqlite3.Error:  # pragma: no cover - closing never fails in practice
                pass
            self._conn = None
            self._pending.clear()
            if failure is not None:
                raise StoreError(
                    f"{lost} buffered judgements were NOT saved when closing {self.path}: {failure}"
                ) from failure

    def __enter__(self) -> "JudgementStore":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "readwrite"
        state = "closed" if self._conn is None else f"{len(self._pending)} pending"
        return f"JudgementStore({self.path!r}, {mode}, {state})"

    # ------------------------------------------------------------------ inspection

    def stats(self) -> dict[str, Any]:
        """Counts of committed rows: ``judgements``, ``outcomes`` (every outcome value, zeros
        included), ``judges``, ``prompts`` (distinct prompt ids), ``texts``, summed ``tokens``
        (prompt/cached/completion), ``pending`` (buffered, not yet committed puts), versions."""
        with self._lock:
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
                    )
                }
            except sqlite3.Error as exc:
                raise self._store_error(exc, "reading") from exc
            return {
                "path": self.path,
                "schema_version": SCHEMA_VERSION,
                "key_version": KEY_VERSION,
                "judgements": sum(outcomes.values()),
                "outcomes": outcomes,
                **counts,
                "tokens": {"prompt": pt, "cached": ct, "completion": comp},
                "pending": len(self._pending),
            }

    def check(self) -> list[str]:
        """Verify the whole store; return the problems found (empty when healthy).

        Commits buffered puts first, then checks: SQLite ``PRAGMA integrity_check``; application
        id, schema and key versions; every judge identity and text against its sha256; every
        row's references, its key recomputed from the stored judge, prompt, texts and sample, and
        its ``row_hash`` (so an edited outcome, reasoning or token count is reported); and no
        orphan texts or judges. Reads every row: seconds for ~100k judgements.
        """
        self.flush()
        problems: list[str] = []
        with self._lock:
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
            judges: dict[str, str] = {}
            for h, identity in conn.execute("SELECT hash, identity FROM judges"):
                judges[h] = identity
                if _sha256(identity) != h:
                    report("judge", f"judge {h}: identity does not match its hash (edited?)")
            texts: set[str] = set()
            for h, bad in conn.execute("SELECT hash, sha256_mismatch(hash, body) FROM texts"):
                texts.add(h)
                if bad:
                    report("text", f"text {h}: body does not match its hash (edited?)")
            n = len(_COLUMNS)
            for r in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM judgements ORDER BY id"):
                key, judge_hash, prompt_hash, first_hash, second_hash = r[0], r[1], r[3], r[6], r[7]
                missing = [f"judge {judge_hash}"] if judge_hash not in judges else []
                missing += [
                    f"{what} text {h}"
                    for what, h in (("prompt", prompt_hash), ("first", first_hash), ("second", second_hash))
                    if h not in texts
                ]
                if missing:
                    report("missing", f"judgement {key}: references missing {', '.join(missing)}")
                    continue
                if _key_from_hashes(judges[judge_hash], prompt_hash, first_hash, second_hash, r[8]) != key:
                    report("key", f"judgement {key}: key mismatch (judge, prompt, texts or sample edited)")
                if _row_hash(r[: n - 1]) != r[n - 1]:
                    report("row", f"judgement {key}: row hash mismatch (outcome, reasoning, tokens ... edited)")
            for (h,) in conn.execute(
                "SELECT hash FROM texts WHERE hash NOT IN (SELECT prompt_hash FROM judgements "
                "UNION SELECT first_hash FROM judgements UNION SELECT second_hash FROM judgements)"
            ):
                report("orphan text", f"text {h}: orphan (no judgement uses it)")
            for (h,) in conn.execute("SELECT hash FROM judges WHERE hash NOT IN (SELECT judge_hash FROM judgements)"):
                report("orphan judge", f"judge {h}: orphan (no judgement uses it)")
        finally:
            conn.execute("COMMIT")
        problems.extend(
            f"... and {c - _MAX_PROBLEMS} more {kind} problems" for kind, c in counts.items() if c > _MAX_PROBLEMS
        )

    def export(self, prompt_id: str | None = None, *, include_errors: bool = False) -> Iterator[dict[str, Any]]:
        """Stored judgements as JSON-ready dicts, in insertion order (buffered puts are committed
        first), optionally only those of ``prompt_id``; ERROR rows only with ``include_errors``.

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
            "LEFT JOIN texts p ON p.hash = j.prompt_hash LEFT JOIN texts f ON f.hash = j.first_hash "
            "LEFT JOIN texts s ON s.hash = j.second_hash LEFT JOIN judges g ON g.hash = j.judge_hash "
            f"WHERE {' AND '.join(conditions)} ORDER BY j.id LIMIT {_CHUNK}"
        )
        last_id = 0
        parsed: dict[str, Any] = {}  # small caches: a prompt and a judge repeat over many rows
        while True:
            # page by id, lock held per page only: the consumer may be slow or write meanwhile
            with self._lock:
                conn = self._connection()
                try:
                    page = conn.execute(sql, [last_id, *params]).fetchall()
                except sqlite3.Error as exc:
                    raise self._store_error(exc, "reading") from exc
            if not page:
                return
            for r in page:
                (last_id, key, pid, prompt_json, fi, si, first_text, second_text, sample, outcome, reasoning,
                 verdict_text, pt, ct, comp, latency, error, extra, created, identity) = r  # fmt: skip
                if None in (prompt_json, first_text, second_text, identity):
                    raise StoreError(f"judgement {key} in {self.path} references a missing text or judge; run check()")
                if len(parsed) > 64:
                    parsed.clear()
                if prompt_json not in parsed:
                    parsed[prompt_json] = json.loads(prompt_json)
                if identity not in parsed:
                    parsed[identity] = json.loads(identity)
                yield {
                    "prompt": parsed[prompt_json],
                    "first": first_text,
                    "second": second_text,
                    # the replay judge's format: A, B, tie or abstain; an error has no verdict
                    "verdict": outcome if outcome != "error" else None,
                    "prompt_id": pid,
                    "first_index": fi,
                    "second_index": si,
                    "sample": sample,
                    "outcome": outcome,
                    "reasoning": reasoning,
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

    def _store_error(self, exc: BaseException, action: str) -> StoreError:
        """A :class:`StoreError` that says what went wrong in words a user can act on."""
        kind = _error_kind(exc)
        where = f"{action} the judgement store {self.path}"
        pending = ""
        if self._pending:
            pending = f"; {len(self._pending)} judgements stay buffered and the next flush() retries them"
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

    def _write_transaction(self, fn: Any, action: str) -> None:
        """Run ``fn`` inside ``BEGIN IMMEDIATE ... COMMIT``, retrying on SQLITE_BUSY until
        ``timeout_s``. IMMEDIATE takes the write lock up front, so a transaction never has to
        upgrade a read lock (the one case SQLite's busy handler cannot wait out)."""
        conn = self._connection()
        deadline = time.monotonic() + self.timeout_s
        attempt = 0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                fn()
                conn.execute("COMMIT")
                return
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:  # pragma: no cover - SQLite may have rolled back already
                        pass
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc) and time.monotonic() < deadline:
                    attempt += 1
                    time.sleep(min(0.5, 0.005 * 2**attempt) * (0.5 + random.random()))
                    continue
                raise self._store_error(exc, action) from exc

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
        uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={mode}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._store_error(exc, "opening") from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            conn.create_function("sha256_mismatch", 2, lambda h, body: _sha256(body) != h, deterministic=True)
            self._initialise_or_verify(conn)
            if check_on_open:
                result = [r[0] for r in conn.execute("PRAGMA quick_check")]
                if result != ["ok"]:
                    raise StoreError(f"{path} is corrupted (quick_check: {'; '.join(result[:5])}); refusing to use it")
            if not self.readonly:
                # a real write at open: a read-only file or directory is reported now, not at the
                # first commit after an hour of judging
                self._write_transaction(
                    lambda: conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_opened', ?)", (_now(),)), "opening"
                )
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

    def _initialise_or_verify(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise StoreError(
                f"{self.path} is an SQLite database but not a tourney judgement store "
                f"(application_id {app_id}, tables {tables}); refusing to use it"
            )
        if not self.readonly:
            if not tables:
                # before WAL mode, which fixes it: 16 kB pages pack several judgements (a few kB of
                # reasoning each) per page, where 4 kB pages fit one and waste the rest
                conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
            self._set_wal(conn)
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
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

            self._write_transaction(create, "creating")
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta"))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path} is not a tourney judgement store (no meta table: {exc})") from exc
        problems = self._meta_problems(meta)
        if problems:
            raise StoreError(
                f"cannot use the judgement store {self.path}: {'; '.join(problems)}. The file was not modified."
            )

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
    def _meta_problems(meta: Mapping[str, str]) -> list[str]:
        if meta.get("application") != _APPLICATION:
            return [f"not a tourney judgement store (meta application is {meta.get('application')!r})"]
        problems = []
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            problems.append(
                f"it has schema version {meta.get('schema_version')}, this tourney reads version {SCHEMA_VERSION} "
                "(use the matching tourney release, or a new store)"
            )
        if meta.get("key_version") != str(KEY_VERSION):
            problems.append(
                f"its keys are version {meta.get('key_version')}, this tourney computes version {KEY_VERSION}, "
                "so nothing in it would be reused"
            )
        return problems

    def _flush_if_due(self) -> None:
        with self._lock:
            if (
                self._conn is None
                or not self._pending
                or self.flush_interval_s is None
                or time.monotonic() - self._oldest_pending < self.flush_interval_s
            ):
                return
            try:
                self.flush()
            except StoreError:
                pass  # kept in _background_error; the next put or flush retries and raises


def _flush_timer(ref: "weakref.ref[JudgementStore]", stop: threading.Event, interval: float) -> None:
    """Background commit of buffered puts once the oldest is ``interval`` seconds old. Holds only
    a weak reference, so a store that is dropped without close() is not kept alive by it."""
    while not stop.wait(max(interval / 4, 0.01)):
        store = ref()
        if store is None:
            return
        store._flush_if_due()  # noqa: SLF001
        del store


def _judgement_from_row(row: Sequence[Any]) -> Judgement:
    _, outcome, reasoning, verdict, sample, pt, ct, comp, latency, error, extra = row
    return Judgement(
        outcome=Outcome(outcome), reasoning=reasoning, verdict=verdict, sample=sample, prompt_tokens=pt,
        cached_tokens=ct, completion_tokens=comp, latency_s=latency, error=error, extra=json.loads(extra),
    )  # fmt: skip


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
