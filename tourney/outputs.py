"""Writing results: JSONL or parquet, atomically; the output schema; pandas and ``datasets``
helpers; and reading back what ``tourney rank`` wrote (a result by prompt id, the meta file, the
input item), for ``tourney explain`` and ``tourney plot``.

Output rows
-----------
A JSONL output line is :func:`tourney.types.dumps` of the result (see
:meth:`tourney.types.PromptResult.to_json`). A parquet output (and :func:`to_arrow`,
:func:`to_pandas`, :func:`to_dataset`) has one fixed schema, :func:`result_schema`, that
pandas, pyarrow and ``datasets`` load directly, whatever the strategy or judge:

=================  =====================================================  ==========================
column             type                                                   JSONL
=================  =====================================================  ==========================
id, status         string (id null for a row whose id could not be read)  same
error              string (null when none)                                absent when none
best               int64                                                  same
best_response      string                                                 same
ranking            list<int64>                                            same
scores             list<double>                                           same
scale              string                                                 same
uncertainty        list<double> (null when the strategy has none)         absent when none
duplicates         list<list<int64>> (empty when none)                    absent when none
comparisons ...    int64: comparisons, samples, abstentions, ties, errors same
tokens             struct<prompt, cached, completion: int64>              same
budget_limited     bool                                                   same
strategy, judge    struct<name, arg: string, options: string (JSON)>      options an object, absent
                                                                          when empty; arg absent
                                                                          when none
seed               int64                                                  same
matches            list<struct<first, second: int64, outcome: string,     same
                   votes: list<int64>>>
info               string (JSON of the strategy's own record)             an object, absent when empty
=================  =====================================================  ==========================

A failed row has nulls where it has no value. The input row's other fields follow as columns of
their own (a parquet or ``datasets`` input keeps its column types; a JSON input's types are taken
from the first :data:`ROW_GROUP` rows by pyarrow, a column it cannot type as JSON text); one
named like a result column goes under the struct ``input``.

Atomic files
------------
:class:`OutputFile` writes ``PATH.partial`` beside ``PATH`` and renames it to ``PATH`` only when
the run is complete (then the meta file, the same way). A run that stops early (an error,
SIGINT, SIGTERM) leaves an earlier ``PATH`` untouched and keeps its own rows in ``PATH.partial``
(whole lines only) with ``PATH.partial.meta.json`` saying it is partial, why it stopped and the
command that resumes it. A write error (a full disk, an I/O error, no permission) is an
:class:`OutputError`. A device or a pipe (``/dev/full``, ``/dev/stdout``, a FIFO) is written
directly, without a rename or a meta file; no ``PATH`` is stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TextIO, cast

from .errors import InputError, MissingExtraError, TourneyError
from .types import RESULT_COLUMNS, RESULT_KEYS, PromptResult, dumps

__all__ = [
    "OUTPUT_FORMATS",
    "OutputError",
    "OutputFile",
    "ROW_GROUP",
    "ResultWriter",
    "find_item",
    "find_result",
    "output_format",
    "read_meta",
    "read_results",
    "resolve_path",
    "result_schema",
    "to_arrow",
    "to_dataset",
    "to_pandas",
]

#: the output formats (``--output-format``; by default from ``--out``'s extension)
OUTPUT_FORMATS = ("jsonl", "parquet")
#: rows per parquet row group (memory of the parquet writer: one row group of results)
ROW_GROUP = 1024


class OutputError(TourneyError, OSError):
    """An output file cannot be written (a full disk, an I/O error, no permission, not a file)."""


def _pyarrow(feature: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise MissingExtraError("pyarrow", "data", feature) from None
    return pyarrow


def output_format(path: str | None, format: str | None = None) -> str:
    """The output format: ``format`` when given, else ``parquet`` for a ``.parquet``/``.pq`` path,
    else ``jsonl``."""
    if format is not None:
        if format not in OUTPUT_FORMATS:
            raise OutputError(f"unknown output format {format!r}; known: {', '.join(OUTPUT_FORMATS)}")
        return format
    if path and Path(path).suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    return "jsonl"


# -- the schema ------------------------------------------------------------------------------
def result_schema(extra: Any = None, *, arranged: bool = False) -> Any:
    """The pyarrow schema of result rows; ``extra`` (a pyarrow schema) adds the input's other
    columns after them: as the input has them (a column named like a result column goes under
    the struct ``input``), or ``arranged`` already (``input`` built)."""
    pa = _pyarrow("the parquet output schema")
    i64, f64, s = pa.int64(), pa.float64(), pa.string()
    spec = pa.struct([("name", s), ("arg", s), ("options", s)])
    fields = [
        ("id", s),
        ("status", s),
        ("error", s),
        ("best", i64),
        ("best_response", s),
        ("ranking", pa.list_(i64)),
        ("scores", pa.list_(f64)),
        ("scale", s),
        ("uncertainty", pa.list_(f64)),
        ("duplicates", pa.list_(pa.list_(i64))),
        ("comparisons", i64),
        ("samples", i64),
        ("abstentions", i64),
        ("ties", i64),
        ("errors", i64),
        ("tokens", pa.struct([("prompt", i64), ("cached", i64), ("completion", i64)])),
        ("budget_limited", pa.bool_()),
        ("strategy", spec),
        ("judge", spec),
        ("seed", i64),
        ("matches", pa.list_(pa.struct([("first", i64), ("second", i64), ("outcome", s), ("votes", pa.list_(i64))]))),
        ("info", s),
    ]
    out = [pa.field(n, t) for n, t in fields]
    if extra is not None and len(extra) and arranged:
        out += [f.remove_metadata() for f in extra]
    elif extra is not None and len(extra):
        moved = [f for f in extra if f.name in RESULT_KEYS]
        out += [f.remove_metadata() for f in extra if f.name not in RESULT_KEYS]
        if moved:
            out.append(pa.field("input", pa.struct([f.remove_metadata() for f in moved])))
    return pa.schema(out)


def _spec_record(spec: Any) -> dict[str, Any] | None:
    if not isinstance(spec, Mapping):
        return None
    return {
        "name": spec.get("name"),
        "arg": spec.get("arg"),
        "options": json.dumps(dict(spec.get("options") or {}), ensure_ascii=False, sort_keys=True),
    }


def _record(row: PromptResult | Mapping[str, Any]) -> dict[str, Any]:
    """One result as a row of :func:`result_schema` (extras included, not yet typed)."""
    d = row.to_json() if isinstance(row, PromptResult) else dict(row)
    rec: dict[str, Any] = {k: d.pop(k, None) for k in RESULT_COLUMNS}
    rec["strategy"] = _spec_record(rec["strategy"])
    rec["judge"] = _spec_record(rec["judge"])
    rec["info"] = None if rec["info"] is None else json.dumps(rec["info"], ensure_ascii=False)
    if rec["status"] != "failed" and rec["duplicates"] is None:
        rec["duplicates"] = []
    rec.update(d)  # the input's other fields (and ``input``)
    return rec


def _unrecord(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A :func:`result_schema` row back in the JSONL shape (:meth:`PromptResult.to_json`)."""
    d: dict[str, Any] = {}
    failed = rec.get("status") == "failed"
    for k in RESULT_COLUMNS:
        v = rec.get(k)
        if k in ("strategy", "judge") and v is not None:
            spec = {"name": v["name"]}
            if v.get("arg") is not None:
                spec["arg"] = v["arg"]
            options = json.loads(v["options"]) if v.get("options") else {}
            if options:
                spec["options"] = options
            v = spec
        elif k == "info" and v is not None:
            v = json.loads(v)
        if v is None and (failed or k in ("error", "uncertainty", "info")) and k not in ("id", "status"):
            continue
        if k == "duplicates" and not v:
            continue
        d[k] = v
    if failed:  # a failed row's fields, in to_json's order
        d = {k: d[k] for k in ("id", "status", "error") if k in d}
    else:  # error sits after budget_limited in to_json
        if "error" in d:
            err = d.pop("error")
            keys = list(d)
            at = keys.index("budget_limited") + 1
            d = {**{k: d[k] for k in keys[:at]}, "error": err, **{k: d[k] for k in keys[at:]}}
    for k, v in rec.items():
        if k not in RESULT_COLUMNS and not (k == "input" and v is None):  # ``input``: only rows that had one
            d[k] = v
    return d


class _ExtraColumns:
    """Arrow types for the input's other fields of a JSON input (no schema to take them from):
    inferred by pyarrow from the first rows seen and kept for the whole file (a parquet file has
    one schema). A column whose type cannot be stored (all null, an empty object, mixed types)
    is JSON text. A later value that does not fit its column is written as JSON text in a text
    column, and as null with a warning in any other."""

    def __init__(self) -> None:
        self.types: dict[str, Any] | None = None
        self.json_columns: set[str] = set()
        self.warnings: list[str] = []

    def decide(self, records: list[dict[str, Any]]) -> None:
        pa = _pyarrow("parquet output")
        names: dict[str, None] = {}
        for r in records:
            for k in r:
                if k not in RESULT_COLUMNS:
                    names.setdefault(k, None)
        self.types = {}
        for name in names:
            values = [r.get(name) for r in records]
            try:
                t = pa.array(values, from_pandas=False).type
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
                t = None
            if t is None or not _storable(pa, t):
                self.types[name] = pa.string()
                self.json_columns.add(name)
            else:
                self.types[name] = t

    def schema(self) -> Any:
        pa = _pyarrow("parquet output")
        assert self.types is not None
        return pa.schema([pa.field(k, t) for k, t in self.types.items()])

    def fit(self, records: list[dict[str, Any]], first_row: int) -> None:
        """Make every record's extras fit the decided types (in place)."""
        pa = _pyarrow("parquet output")
        assert self.types is not None
        names = {k for r in records for k in r if k not in RESULT_COLUMNS}
        for k in names:
            t = self.types.get(k)
            if t is None:
                for r in records:
                    if k in r:
                        del r[k]
                self.warnings.append(
                    f"input field {k!r} first appears after the first rows that fixed the parquet "
                    f"schema (output row {first_row}): left out of the parquet output"
                )
                continue
            if k in self.json_columns:
                for r in records:
                    if r.get(k) is not None:
                        r[k] = json.dumps(r[k], ensure_ascii=False, default=str)
                continue
            try:
                pa.array([r.get(k) for r in records], type=t)
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
                pass
            for i, r in enumerate(records):  # find the values that do not fit
                v = r.get(k)
                if v is None:
                    continue
                try:
                    pa.array([v], type=t)
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
                    if pa.types.is_string(t) or pa.types.is_large_string(t):
                        r[k] = json.dumps(v, ensure_ascii=False, default=str)
                    else:
                        self.warnings.append(
                            f"output row {first_row + i}: input field {k!r} holds a "
                            f"{type(v).__name__} that does not fit its column type {t} (fixed by "
                            "the first rows): written as null (the JSONL output keeps it)"
                        )
                        r[k] = None


def _storable(pa: Any, t: Any) -> bool:
    """False for types parquet cannot store or that say nothing (null, a struct without fields)."""
    if pa.types.is_null(t):
        return False
    if pa.types.is_struct(t):
        return t.num_fields > 0 and all(_storable(pa, t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _storable(pa, t.value_type)
    if pa.types.is_map(t):
        return _storable(pa, t.key_type) and _storable(pa, t.item_type)
    return True


def to_arrow(
    results: Iterable[PromptResult | Mapping[str, Any]] | str | os.PathLike[str], extra_schema: Any = None
) -> Any:
    """Results (``PromptResult`` objects, rows in the JSONL shape, or the path of a JSONL or
    parquet output) as one ``pyarrow.Table`` of :func:`result_schema`."""
    pa = _pyarrow("to_arrow")
    if isinstance(results, (str, os.PathLike)):
        if output_format(os.fspath(results)) == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(results)
        results = read_results(results)
    records = [_record(r) for r in results]
    if extra_schema is None:
        cols = _ExtraColumns()
        cols.decide(records)
        cols.fit(records, 0)
        return pa.Table.from_pylist(records, schema=result_schema(cols.schema(), arranged=True))
    return pa.Table.from_pylist(records, schema=result_schema(extra_schema))


def to_pandas(results: Iterable[PromptResult | Mapping[str, Any]] | str | os.PathLike[str]) -> Any:
    """Results as a ``pandas.DataFrame`` with the columns of :func:`result_schema` (imports
    pandas only when called): list columns hold arrays, structs dicts, ``info`` and spec
    ``options`` JSON text."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise MissingExtraError("pandas", "data", "to_pandas") from None
    return to_arrow(results).to_pandas()


def to_dataset(results: Iterable[PromptResult | Mapping[str, Any]] | str | os.PathLike[str]) -> Any:
    """Results as a ``datasets.Dataset`` with the columns of :func:`result_schema` (imports
    ``datasets`` only when called); ``to_parquet``, ``save_to_disk`` and ``push_to_hub`` work on it."""
    try:
        import datasets
    except ImportError:
        raise MissingExtraError("datasets", "data", "to_dataset") from None
    return datasets.Dataset(to_arrow(results))


def read_results(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The rows of a JSONL or parquet output, each in the JSONL shape (a parquet row's JSON text
    columns parsed back), read as they go."""
    p = os.fspath(path)
    if output_format(p) == "parquet":
        _pyarrow("reading a parquet output")
        import pyarrow.parquet as pq

        f = pq.ParquetFile(p)
        try:
            for batch in f.iter_batches(batch_size=ROW_GROUP):
                for rec in batch.to_pylist():
                    yield _unrecord(rec)
        finally:
            f.close()
        return
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


# -- atomic output files ----------------------------------------------------------------------------
class OutputFile:
    """One output: ``PATH.partial`` renamed to ``PATH`` by :meth:`commit`; stdout when ``path``
    is None; a device or pipe written directly.

    The file is created when this object is (so a directory that refuses it fails before any
    work is paid for). :meth:`write` appends bytes (whole rows); :meth:`commit` flushes, syncs and
    renames, then writes the meta file the same way; :meth:`abort` keeps what was written as the
    partial result (or removes an empty one). Write errors raise :class:`OutputError`.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, meta: bool = True):
        self.path = None if path is None else os.fspath(path)
        self.rows = 0  #: whole rows written
        self.bytes = 0
        self.text = True  #: lines of text (a partial file is cut after its last newline); False for parquet
        self.closed = False
        self.meta_path: str | None = None
        self.partial_meta_path: str | None = None
        if self.path is None:
            self.kind, self.target, self.tmp = "stdout", None, None
            # a replaced sys.stdout without a byte buffer: the writer calls only write and flush
            self._fh: IO[bytes] | None = getattr(sys.stdout, "buffer", None) or cast(
                IO[bytes], _TextAsBinary(sys.stdout)
            )
            return
        if os.path.isdir(self.path):
            raise OutputError(f"--out {self.path} is a directory: give a file name")
        if os.path.exists(self.path) and not os.path.isfile(self.path):  # a device, a FIFO: written as it is
            self.kind, self.target, self.tmp = "device", self.path, None
            self._fh = self._open(self.path, "ab" if self.path.startswith("/dev/") else "wb")
            return
        self.kind = "file"
        self.target = os.path.realpath(self.path) if os.path.islink(self.path) else self.path
        self.tmp = self.target + ".partial"
        if meta:
            self.meta_path = self.path + ".meta.json"
            self.partial_meta_path = self.tmp + ".meta.json"
            _remove(self.partial_meta_path)  # it described an earlier partial file, replaced now
        self._fh = self._open(self.tmp, "wb")

    @property
    def name(self) -> str:
        """Where rows go now: the partial file, the device, or stdout."""
        return self.tmp or self.path or "stdout"

    def _open(self, path: str, mode: str) -> IO[bytes]:
        try:
            return open(path, mode)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def write(self, data: bytes, rows: int = 1) -> None:
        """Append ``data`` (``rows`` whole rows)."""
        assert self._fh is not None and not self.closed
        try:
            self._fh.write(data)
        except BrokenPipeError:
            if self.kind == "stdout":  # e.g. `tourney rank ... | head`: the command line's own handling
                raise
            raise OutputError(f"cannot write {self.name}: the pipe was closed") from None
        except OSError as exc:
            raise OutputError(f"cannot write {self.name}: {exc.strerror or exc}") from exc
        self.rows += rows
        self.bytes += len(data)

    @property
    def handle(self) -> IO[bytes]:
        """The open binary file (for writers that write through it, e.g. parquet)."""
        assert self._fh is not None
        return self._fh

    def _finish(self) -> None:
        fh, self._fh = self._fh, None
        self.closed = True
        if fh is None:
            return
        try:
            fh.flush()
            if self.kind == "file":
                os.fsync(fh.fileno())
        except BrokenPipeError:
            if self.kind == "stdout":
                raise
            raise OutputError(f"cannot write {self.name}: the pipe was closed") from None
        except OSError as exc:
            with contextlib.suppress(OSError):
                if self.kind != "stdout":
                    fh.close()
            raise OutputError(f"cannot write {self.name}: {exc.strerror or exc}") from exc
        if self.kind != "stdout":
            try:
                fh.close()
            except OSError as exc:
                raise OutputError(f"cannot write {self.name}: {exc.strerror or exc}") from exc

    def commit(self, meta: Mapping[str, Any] | None = None) -> None:
        """The output is complete: flush, sync, rename ``PATH.partial`` to ``PATH``, then write
        ``meta`` (when given and this output has a meta file) to ``PATH.meta.json`` the same way."""
        self._finish()
        if self.kind != "file":
            return
        assert self.tmp is not None and self.target is not None
        try:
            os.replace(self.tmp, self.target)
            _sync_dir(self.target)
        except OSError as exc:
            raise OutputError(
                f"cannot rename {self.tmp} to {self.target}: {exc.strerror or exc} "
                f"(the complete output is in {self.tmp})"
            ) from exc
        if meta is not None and self.meta_path is not None:
            _write_json_atomic(self.meta_path, meta)
        if self.partial_meta_path:
            _remove(self.partial_meta_path)

    def abort(self, meta: Mapping[str, Any] | None = None) -> str | None:
        """The run stopped early: keep the rows written so far in ``PATH.partial`` (whole rows;
        a row cut by a write error is dropped) with ``meta`` in ``PATH.partial.meta.json``, or
        remove the partial file when it holds no row. Returns the partial file's path, or None.
        Never raises: a partial file that cannot be finished is reported in the meta and the log."""
        problem = None
        try:
            self._finish()
        except (OutputError, BrokenPipeError) as exc:
            problem = str(exc)
        if self.kind != "file":
            return None
        assert self.tmp is not None
        if self.rows == 0:
            _remove(self.tmp)
            return None
        if self.text:  # a line cut by a write error is not a row
            _trim_to_last_newline(self.tmp)
        if meta is not None and self.partial_meta_path is not None:
            with contextlib.suppress(OSError, OutputError):
                _write_json_atomic(self.partial_meta_path, {**meta, **({"write_error": problem} if problem else {})})
        return self.tmp


class _TextAsBinary:
    """A text stream (a replaced ``sys.stdout``) taking UTF-8 bytes."""

    def __init__(self, text: TextIO):
        self.text = text

    def write(self, data: bytes) -> int:
        return self.text.write(data.decode("utf-8"))

    def flush(self) -> None:
        self.text.flush()


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):  # absent; or a read-only folder, which the next write reports
        os.remove(path)


def _sync_dir(path: str) -> None:
    """Make a rename in ``path``'s folder durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path: str, obj: Mapping[str, Any]) -> None:
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _trim_to_last_newline(path: str) -> None:
    """Cut a file after its last newline (a line cut by a write error is not a row)."""
    try:
        with open(path, "r+b") as fh:
            end = fh.seek(0, os.SEEK_END)
            pos = end
            while pos > 0:
                start = max(0, pos - (1 << 16))
                fh.seek(start)
                chunk = fh.read(pos - start)
                k = chunk.rfind(b"\n")
                if k >= 0:
                    fh.truncate(start + k + 1)
                    return
                pos = start
            fh.truncate(0)
    except OSError:
        pass


# -- result writers -----------------------------------------------------------------------------------
class ResultWriter:
    """Writes results to an :class:`OutputFile` as JSONL lines or parquet row groups.

    ``extra_schema``: the pyarrow schema of the input's other columns (from a parquet or
    ``datasets`` input) for parquet output; None decides their types from the first rows.
    """

    def __init__(self, out: OutputFile, format: str = "jsonl", extra_schema: Any = None):
        if format not in OUTPUT_FORMATS:
            raise OutputError(f"unknown output format {format!r}; known: {', '.join(OUTPUT_FORMATS)}")
        if format == "parquet" and out.kind == "stdout":
            raise OutputError("parquet output needs a file: give --out FILE.parquet")
        if format == "parquet":
            _pyarrow("parquet output")
        self.out = out
        out.text = format == "jsonl"
        self.format = format
        self.extra_schema = extra_schema
        self._records: list[dict[str, Any]] = []
        self._writer: Any = None
        self._extra = _ExtraColumns() if extra_schema is None else None
        self._schema: Any = None
        self.rows = 0

    @property
    def warnings(self) -> list[str]:
        return self._extra.warnings if self._extra is not None else []

    def write(self, result: PromptResult) -> None:
        if self.format == "jsonl":
            self.out.write((dumps(result) + "\n").encode("utf-8"))
        else:
            self._records.append(_record(result))
            self.rows += 1
            if len(self._records) >= ROW_GROUP:
                self._flush()
            return
        self.rows += 1

    def _flush(self) -> None:
        if not self._records and self._writer is not None:
            return
        pa = _pyarrow("parquet output")
        import pyarrow.parquet as pq

        records, self._records = self._records, []
        if self._schema is None:
            if self._extra is not None:
                self._extra.decide(records)
                self._schema = result_schema(self._extra.schema(), arranged=True)
            else:
                self._schema = result_schema(self.extra_schema)
        if self._extra is not None:
            self._extra.fit(records, self.rows - len(records))
        try:
            table = pa.Table.from_pylist(records, schema=self._schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise OutputError(
                f"cannot write rows {self.rows - len(records)}-{self.rows - 1} as parquet: {exc}"
            ) from exc
        try:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.out.handle, self._schema)
            self._writer.write_table(table, row_group_size=ROW_GROUP)
        except OSError as exc:
            raise OutputError(f"cannot write {self.out.name}: {exc.strerror or exc}") from exc
        self.out.rows += len(records)

    def _close_parquet(self) -> None:
        if self.format != "parquet":
            return
        self._flush()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError as exc:
                raise OutputError(f"cannot write {self.out.name}: {exc.strerror or exc}") from exc

    def commit(self, meta: Mapping[str, Any] | None = None) -> None:
        """All results are written: finish the file and put it in place (see :meth:`OutputFile.commit`)."""
        self._close_parquet()
        self.out.commit(meta)

    def abort(self, meta: Mapping[str, Any] | None = None) -> str | None:
        """Keep what was written as the partial result (see :meth:`OutputFile.abort`); for parquet
        the buffered rows are written first and the file is closed, so the partial file loads."""
        try:
            self._close_parquet()
        except OutputError:
            self._records = []
        return self.out.abort(meta)


# -- reading back what tourney rank wrote ------------------------------------------------------
def find_result(path: str | os.PathLike[str], prompt_id: str) -> dict[str, Any]:
    """The output line of ``prompt_id`` in a ``tourney rank`` output file (read line by line;
    a bad line is skipped). Raises :class:`InputError` naming some ids when it is not there."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a tourney rank output file")
    if not p.exists():
        raise FileNotFoundError(f"output file {path} does not exist")
    seen: list[str] = []
    count = 0
    with p.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if not isinstance(rec, dict) or "id" not in rec:
                continue
            count += 1
            if str(rec["id"]) == prompt_id:
                return rec
            if len(seen) < 8:
                seen.append(str(rec["id"]))
    more = f" and {count - len(seen)} more" if count > len(seen) else ""
    raise InputError(
        f"no prompt with id {prompt_id!r} in {path} ({count} results"
        + (f"; ids: {', '.join(seen)}{more})" if seen else ")")
    )


def read_meta(out_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's meta file (``OUT.meta.json``) as a dict, or None when absent or unreadable."""
    p = Path(f"{os.fspath(out_path)}.meta.json")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def resolve_path(path: str | None, meta: Mapping[str, Any] | None) -> str | None:
    """A path the meta file names (the input, the store), made absolute against the run's
    working directory (``cwd`` in the meta file) when it is relative."""
    if not path:
        return None
    if os.path.isabs(path) or not meta or not meta.get("cwd"):
        return path
    return os.path.join(str(meta["cwd"]), path)


def find_item(input_path: str, prompt_id: str, index: int | None) -> dict[str, Any] | None:
    """The input line of ``prompt_id`` in the run's input file (by id; an item without one has
    its 0-based line index as id), or None when the file or the line is not there."""
    try:
        fh = open(input_path, "rb")  # noqa: SIM115 - closed by the `with` below; only opening may fail quietly
    except OSError:
        return None
    with fh:
        k = 0
        for raw in fh:
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                k += 1
                continue
            if isinstance(rec, dict) and (
                str(rec.get("id", k)) == prompt_id or (index is not None and k == index and "id" not in rec)
            ):
                return rec
            k += 1
    return None
