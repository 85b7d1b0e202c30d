"""The write side of the judgement store: the SQL of one write cycle, and the process that runs it.

:class:`tourney.store.JudgementStore` batches puts, claim requests and releases in memory, and its
writer thread hands each batch to a :class:`Committer`, which runs it as ONE write transaction:
the rows (text and judge ids, compression, row hashes), the upsert, the releases, the claims,
the renewal. By default the Committer runs in a WRITER PROCESS of its own: this file, started as
``python -I -S _store_writer.py`` by the store (stdlib only: it starts in ~20 ms and imports
nothing of tourney, numpy or the judge). The writer thread then only pickles the batch and waits
on a pipe, with the GIL released, so the interpreter that runs the event loop, the judge and the
strategies is not slowed by the store: building and inserting the rows costs about as much CPU
as the rest of a run with an instant judge, and on the same interpreter the two took turns on
one GIL (``benchmarks/bench_scale.py``: judgements/s with the store, thread against process).
``JudgementStore(..., writer="thread")`` runs the same Committer in the writer thread instead.

Protocol (parent to writer process, over its stdin; replies on its stdout): frames of a 4-byte
big-endian length and a pickle, one reply per request: ``("open", path, owner, host_id,
lease_s, timeout_s)``, ``("commit", puts, releases, requests, renew, final, taken, pending)``,
``("sql", statement)`` (tests: a pragma on the writer's connection), ``("close",)``. A reply is
``("ok", value)``, ``("sqlite", kind, message)`` for an SQLite error (the store words it), or
``("bug", traceback)``. The process exits at ``close`` or when its stdin ends: a killed parent
leaves no writer behind, and the transaction running at that moment still commits. It runs in a
session of its own, so a Ctrl-C at the terminal reaches only the parent, which closes the store
in order. Only the parent's trusted store talks to it (pickles are never read from elsewhere).

This module is imported by :mod:`tourney.store` too (the helpers below are shared), so it must
stay stdlib-only and free of package-relative imports.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import sqlite3
import struct
import sys
import time
import traceback
import urllib.parse
import zlib
from collections.abc import Callable, Sequence
from hashlib import sha256
from typing import Any

#: Keys per ``IN (...)`` query: well below SQLite's bound-parameter limit on every version.
_CHUNK = 500
#: texts (reasoning, prompts, responses) of at least this many characters are zlib-compressed
#: when that saves at least 10% (shorter ones never pay for the BLOB header and the call)
_COMPRESS_MIN_CHARS = 256
_COMPRESS_LEVEL = 6
#: the writer connection's page cache (kB; SQLite's default is 2000): random-key index inserts
#: find more of their pages there; bounded, so memory stays flat in the size of the store
_WRITER_CACHE_KB = 8000
#: the WAL is checkpointed into the database and started over once it is this large (bytes)
_CHECKPOINT_BYTES = 32 * 1024 * 1024
#: text and judge row ids the writer remembers (at most; then it starts over), so a prompt's
#: texts are looked up once, not once per match
_ID_CACHE = 8192
_ERROR = "error"  # Outcome.ERROR's value

# Columns of a judgements row in the order the writer builds them (row_hash last).
_COLUMNS = (
    "key", "judge_id", "prompt_id", "prompt_text_id", "first_index", "second_index", "first_text_id",
    "second_text_id", "sample", "outcome", "reasoning", "verdict", "prompt_tokens", "cached_tokens",
    "completion_tokens", "latency_s", "error", "extra", "created", "row_hash",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO judgements ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    # an error is not a paid judgement: any later put replaces it; a real judgement is never replaced
    + " WHERE judgements.outcome = 'error'"
)
_CLAIM_UPSERT = (
    "INSERT INTO claims (key, owner, expires) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires"
)

# ---------------------------------------------------------------------- rows


def _not_json(obj: Any) -> Any:
    raise TypeError(f"{type(obj).__name__} is not a JSON value: {obj!r}")


try:  # the C encoder json uses, without its Python wrapper: rows are hashed by the million
    from json.encoder import c_make_encoder as _c_make_encoder  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a Python without the C accelerator
    _c_make_encoder = None
if _c_make_encoder is not None:
    _C_ENCODE = _c_make_encoder(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )  # markers off (a row is a flat list), sort_keys, no skipkeys, allow_nan False: canonical JSON

    def _encode_list(values: list) -> str:
        return "".join(_C_ENCODE(values, 0))

else:  # pragma: no cover
    _ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def _encode_list(values: list) -> str:
        return _ENCODER.encode(values)


def _row_hash(logical: Sequence[Any]) -> bytes:
    """sha256 over a row's logical content: the canonical JSON of ``[key, judge hash, prompt id,
    prompt hash, first index, second index, first hash, second hash, sample, outcome, reasoning,
    verdict, prompt tokens, cached tokens, completion tokens, latency, error, extra, created]``
    (digests as hex, texts uncompressed; every value a str, int, float or None). The recipe of
    schema version 1's ``row_hash`` too, so upgraded rows keep theirs."""
    return sha256(_encode_list(list(logical)).encode("utf-8")).digest()


def _pack(text: str, min_chars: int | None = None) -> str | bytes:
    """What is stored for ``text``: itself, or zlib(UTF-8) as bytes when that saves >= 10%."""
    if len(text) < (_COMPRESS_MIN_CHARS if min_chars is None else min_chars):
        return text
    raw = text.encode("utf-8")
    packed = zlib.compress(raw, _COMPRESS_LEVEL)
    return packed if len(packed) * 10 <= len(raw) * 9 else text


def _where_in(conn: sqlite3.Connection, sql: str, params: list[Any], values: Sequence[Any]) -> list[tuple]:
    """Run ``sql`` (with one ``{}`` for the ``IN`` list) over ``values`` in chunks; all rows."""
    out: list[tuple] = []
    for i in range(0, len(values), _CHUNK):
        chunk = values[i : i + _CHUNK]
        out.extend(conn.execute(sql.format(", ".join("?" * len(chunk))), [*params, *chunk]).fetchall())
    return out


# ---------------------------------------------------------------------- errors and owners


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


def write_transaction(conn: sqlite3.Connection, fn: Callable[[], object], timeout_s: float) -> None:
    """Run ``fn`` inside ``BEGIN IMMEDIATE ... COMMIT`` on ``conn``, retrying on SQLITE_BUSY
    until ``timeout_s``; raises the last :class:`sqlite3.Error` (the caller words it).
    IMMEDIATE takes the write lock up front, so a transaction never has to upgrade a read lock
    (the one case SQLite's busy handler cannot wait out). ``fn`` must be safe to run again after
    a rollback."""
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            fn()
            conn.execute("COMMIT")
            return
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc) and time.monotonic() < deadline:
                attempt += 1
                time.sleep(min(0.5, 0.005 * 2**attempt) * (0.5 + random.random()))
                continue
            raise


def _proc_state(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of process ``pid`` from
    ``/proc/PID/stat``, or None when there is no such process. Raises OSError without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may contain spaces
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime)


def _owner_alive(owner: str, host_id: str) -> bool | None:
    """Whether the process behind ``owner`` runs: False when it is on this host (and PID
    namespace) and its pid is gone, a zombie, or a newer process; True when it runs; None when
    it cannot be told (another host: only the lease's expiry says)."""
    parts = owner.split("|")
    if len(parts) != 5 or f"{parts[0]}|{parts[1]}" != host_id:
        return None
    try:
        pid = int(parts[2])
    except ValueError:
        return None
    try:
        state = _proc_state(pid)
    except OSError:  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True
    if state is None or state[0] in ("Z", "X"):
        return False
    return not parts[3] or state[1] == parts[3]


# ---------------------------------------------------------------------- the committer


def connect(path: str, mode: str, timeout_s: float) -> sqlite3.Connection:
    """A connection to the store at ``path`` (``mode``: ``ro``, ``rw``, ``rwc``, ...), autocommit,
    usable from any thread, waiting up to ``timeout_s`` for another process's lock."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    return conn


def tune_for_writes(conn: sqlite3.Connection) -> None:
    """The pragmas of every writable connection of a store (the sync thread checkpoints, not commits)."""
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute(f"PRAGMA journal_size_limit = {_CHECKPOINT_BYTES * 4}")


class Committer:
    """Runs a store's write cycles on a connection of its own (see the module docstring).

    A put is the tuple ``(key, judge_json, judge_hash, prompt_json, prompt_hash, first_text,
    first_hash, second_text, second_hash, logical)`` (hex digests; ``logical`` the row's content
    as :func:`_row_hash` covers it); a claim request is ``(key, prompt_hash or None)``."""

    def __init__(self, path: str, owner: str, host_id: str, lease_s: float, timeout_s: float,
                 compress_min_chars: int | None = None):  # fmt: skip
        self.path, self.owner, self.host_id = path, owner, host_id
        self.lease_s, self.timeout_s = lease_s, timeout_s
        self.compress_min_chars = _COMPRESS_MIN_CHARS if compress_min_chars is None else compress_min_chars
        self.conn: sqlite3.Connection | None = connect(path, "rw", timeout_s)
        tune_for_writes(self.conn)
        self.conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KB}")
        self.text_ids: dict[str, int] = {}  # hash hex -> row id, committed (cleared when full)
        self.judge_ids: dict[str, int] = {}

    def commit(self, puts: list[tuple], releases: list[str], requests: list[tuple[str, str | None]], renew: bool,
               final: bool, taken: Sequence[str], pending: dict[str, list[str]]) -> list[frozenset | None]:  # fmt: skip
        """One write transaction: the rows of ``puts``, the release of ``releases``, the claim
        ``requests``, the renewal of this owner's leases, and at ``final`` the deletion of all of
        them. Returns, for each request in order, None while another live owner holds its key
        (or this owner does: ``taken``), else the frozenset of the keys stored for its prompt:
        the committed non-error judgements plus ``pending`` (prompt hash -> keys put but not
        committed by this store). Raises :class:`sqlite3.Error` (nothing of it committed)."""
        conn = self.conn
        assert conn is not None
        self._checkpoint_if_full(conn)
        staged_texts: dict[str, int] = {}
        staged_judges: dict[str, int] = {}
        results: list[frozenset | None] = []
        owner = self.owner

        def work() -> None:
            staged_texts.clear()
            staged_judges.clear()
            results[:] = [None] * len(requests)
            if puts:
                conn.executemany(_UPSERT, self._rows(conn, puts, staged_texts, staged_judges))
            if releases:
                _where_in(conn, "DELETE FROM claims WHERE owner = ? AND key IN ({})", [owner],
                          [bytes.fromhex(k) for k in releases])  # fmt: skip
            if requests:
                self._claim_all(conn, requests, set(taken), pending, results)
            if renew:
                conn.execute("UPDATE claims SET expires = ? WHERE owner = ?", (time.time() + self.lease_s, owner))
            if final:
                conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))

        write_transaction(conn, work, self.timeout_s)
        for cache, new in ((self.text_ids, staged_texts), (self.judge_ids, staged_judges)):
            if len(cache) + len(new) > _ID_CACHE:  # bounded memory: start over (misses cost one query)
                cache.clear()
            cache.update(new)
        return results

    def sql(self, statement: str) -> list[tuple]:
        """Run one statement on the writer's connection (tests: ``PRAGMA max_page_count``)."""
        assert self.conn is not None
        return self.conn.execute(statement).fetchall()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):  # closing never fails in practice
                self.conn.close()
            self.conn = None

    def _checkpoint_if_full(self, conn: sqlite3.Connection) -> None:
        """Finish the sync thread's checkpoint once the WAL passed ``_CHECKPOINT_BYTES`` (between
        two commits: little is left to copy), so the next commit starts the WAL over."""
        try:
            full = os.path.getsize(self.path + "-wal") > _CHECKPOINT_BYTES
        except OSError:
            return
        if full:
            with contextlib.suppress(sqlite3.Error):  # a commit reports a store that stopped working
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _rows(self, conn: sqlite3.Connection, puts: list[tuple], staged_texts: dict, staged_judges: dict) -> list:
        """The judgements rows of ``puts``, inserting the texts and judges they reference that the
        file lacks (their ids assigned here: under the write lock nobody else inserts)."""
        text_ids, judge_ids = self.text_ids, self.judge_ids
        texts: dict[str, str] = {}
        judges: dict[str, str] = {}
        for (
            _,
            judge_json,
            judge_hash,
            prompt_json,
            prompt_hash,
            first_text,
            first_hash,
            second_text,
            second_hash,
            _,
        ) in puts:
            if judge_hash not in judge_ids:
                judges[judge_hash] = judge_json
            for h, body in ((prompt_hash, prompt_json), (first_hash, first_text), (second_hash, second_text)):
                if h not in text_ids:
                    texts[h] = body
        self._ensure_ids(conn, "judges", "identity", judges, staged_judges, pack=False)
        self._ensure_ids(conn, "texts", "body", texts, staged_texts, pack=True)
        new_text, new_judge = staged_texts.get, staged_judges.get  # ids of this transaction, then committed ones
        small = self.compress_min_chars
        rows = []
        for key, _, judge_hash, _, prompt_hash, _, first_hash, _, second_hash, lg in puts:
            reasoning = lg[10]
            rows.append((
                bytes.fromhex(key), new_judge(judge_hash) or judge_ids[judge_hash], lg[2],
                new_text(prompt_hash) or text_ids[prompt_hash], lg[4], lg[5],
                new_text(first_hash) or text_ids[first_hash], new_text(second_hash) or text_ids[second_hash],
                lg[8], lg[9], reasoning if len(reasoning) < small else _pack(reasoning, small), lg[11], lg[12],
                lg[13], lg[14], lg[15], lg[16], lg[17], lg[18], _row_hash(lg),
            ))  # fmt: skip
        return rows

    def _ensure_ids(self, conn: sqlite3.Connection, table: str, column: str, wanted: dict[str, str], staged: dict,
                    pack: bool) -> None:  # fmt: skip
        """Put the row id of each hash (hex) of ``wanted`` (hash -> body) into ``staged``, inserting
        the rows the table lacks. Inside a write transaction: new ids follow max(id) unchallenged."""
        if not wanted:
            return
        for h, i in _where_in(
            conn, f"SELECT hash, id FROM {table} WHERE hash IN ({{}})", [], [bytes.fromhex(h) for h in wanted]
        ):
            staged[h.hex()] = i
        new = [h for h in wanted if h not in staged]
        if new:
            base = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
            small = self.compress_min_chars
            rows = [
                (base + 1 + n, bytes.fromhex(h), _pack(wanted[h], small) if pack else wanted[h])
                for n, h in enumerate(new)
            ]
            conn.executemany(f"INSERT INTO {table} (id, hash, {column}) VALUES (?, ?, ?)", rows)
            staged.update((h, base + 1 + n) for n, h in enumerate(new))

    def _claim_all(self, conn: sqlite3.Connection, requests: list[tuple[str, str | None]], taken: set[str],
                   pending: dict[str, list[str]], results: list) -> None:  # fmt: skip
        """Inside the transaction: take the lease of each request nobody else (alive) holds, and
        set its result to the keys stored for its prompt (see :meth:`commit`)."""
        now = time.time()
        alive: dict[str, bool | None] = {}
        sql = "SELECT key, owner, expires FROM claims WHERE key IN ({})"
        holders = {k.hex(): (o, e) for k, o, e in _where_in(conn, sql, [], [bytes.fromhex(k) for k, _ in requests])}
        granted: list[int] = []
        for i, (key, _) in enumerate(requests):
            if key in taken:
                continue
            holder = holders.get(key)
            if holder is not None and holder[0] != self.owner and holder[1] >= now:
                if holder[0] not in alive:
                    alive[holder[0]] = _owner_alive(holder[0], self.host_id)
                if alive[holder[0]] is not False:  # alive, or another host's lease not yet expired
                    continue
            taken.add(key)
            granted.append(i)
        if not granted:
            return
        expires = now + self.lease_s
        conn.executemany(_CLAIM_UPSERT, [(bytes.fromhex(requests[i][0]), self.owner, expires) for i in granted])
        hashes: list[str] = list(dict.fromkeys(h for i in granted if (h := requests[i][1])))
        stored: dict[str, set[str]] = {h: set(pending.get(h, ())) for h in hashes}
        if hashes:
            sql = (
                "SELECT t.hash, j.key FROM texts t JOIN judgements j ON j.prompt_text_id = t.id "
                f"WHERE t.hash IN ({{}}) AND j.outcome != '{_ERROR}'"
            )
            for h, key in _where_in(conn, sql, [], [bytes.fromhex(h) for h in hashes]):
                stored[h.hex()].add(key.hex())
        for i in granted:
            prompt_hash = requests[i][1]
            results[i] = frozenset(stored[prompt_hash]) if prompt_hash else frozenset()


# ---------------------------------------------------------------------- the writer process


def _read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or None at the end of the stream."""
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd: int) -> Any:
    """The next message on ``fd`` (see the module docstring), or None at the end of the stream.
    One ``read`` takes a whole small frame: each system call lets the calling thread's GIL go,
    and getting it back from a busy event loop thread can take a switch interval (5 ms)."""
    first = os.read(fd, 1 << 16)
    if len(first) < 4:
        rest = _read_exact(fd, 4 - len(first)) if first else None
        if rest is None:
            return None
        first += rest
    size = struct.unpack(">I", first[:4])[0]
    body = first[4:]
    if len(body) < size:
        more = _read_exact(fd, size - len(body))
        if more is None:
            return None
        body += more
    return pickle.loads(body)


def write_frame(fd: int, message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(struct.pack(">I", len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


def serve(rfd: int, wfd: int) -> None:
    """The writer process: answer requests on ``rfd`` until ``close`` or the end of the stream."""
    committer: Committer | None = None
    while True:
        msg = read_frame(rfd)
        if msg is None:  # the parent is gone (or closed the pipe): what it sent is committed
            break
        op = msg[0]
        try:
            if op == "open":
                committer = Committer(*msg[1:])
                reply: tuple = ("ok", os.getpid())
            elif op == "close":
                break
            else:
                assert committer is not None, f"{op} before open"
                reply = ("ok", committer.commit(*msg[1:]) if op == "commit" else committer.sql(msg[1]))
        except sqlite3.Error as exc:
            reply = ("sqlite", _error_kind(exc), str(exc))
        except Exception:  # a bug: the parent reports it
            reply = ("bug", traceback.format_exc())
        try:
            write_frame(wfd, reply)
        except OSError:  # the parent is gone
            break
    if committer is not None:
        committer.close()
    with contextlib.suppress(OSError):
        write_frame(wfd, ("ok", None))  # closed: the parent may close its own connections now


def main() -> None:
    # the protocol owns stdout: anything printed by accident goes to stderr instead
    wfd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(0, wfd)


if __name__ == "__main__":
    main()
