"""Reading input rows: JSONL (plain, gzip, zstd), JSON arrays, parquet, Hugging Face ``datasets``
folders and objects, one row at a time.

:func:`open_input` opens what it is given and checks it before any work is paid for (the path
exists; a folder is a ``datasets`` folder; the content matches the format; the mapped columns of
a parquet file or a dataset exist; the input holds at least one row); :meth:`InputSource.items`
then yields one :class:`~tourney.items.Item` or :class:`~tourney.items.ItemError` per row, in
order, reading as it goes: memory does not grow with the number of rows (parquet and ``datasets``
are read in record batches of :data:`BATCH_ROWS` rows, text line by line, a JSON array element by
element).

Formats (``format=`` / ``--input-format``; by default chosen from the path):

========== ============================================================ ==========================
format     what                                                         chosen for
========== ============================================================ ==========================
jsonl      one JSON object per line                                     ``.jsonl``, ``.ndjson``, other names
json       one JSON array of objects (or JSON lines)                    ``.json``
parquet    a parquet file (pyarrow)                                     ``.parquet``, ``.pq``
datasets   a folder written by ``datasets.Dataset.save_to_disk``        a folder with ``state.json``
========== ============================================================ ==========================

Text may be compressed: gzip (``.gz``) and zstd (``.zst``, needs the ``zstandard`` package) are
recognised by their magic bytes whatever the name. Text must be UTF-8 (a byte order mark is
accepted): a row with bytes that are not UTF-8 fails with an error naming the line and the byte,
never silently replaced, and the other rows go on. A name that contradicts the content (a
parquet file called ``.jsonl``, a ``.gz`` that is not gzip, a JSON array in a ``.jsonl``) is an
error that says which format the content looks like.

Rows are named in messages as ``FILE line N`` (1-based, blank lines counted) for JSON lines,
``FILE element N`` (0-based) for a JSON array, ``FILE row N`` (0-based, as ``dataset[N]``) for
parquet and ``datasets``.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import InputError, MissingExtraError
from .items import DEFAULT_FIELDS, FieldMap, Item, ItemError, parse_item

__all__ = ["BATCH_ROWS", "FORMATS", "InputSource", "detect_format", "open_input"]

#: the input formats (``--input-format``)
FORMATS = ("jsonl", "json", "parquet", "datasets")
#: rows decoded to Python at a time from parquet and ``datasets`` (memory per batch, not per file)
BATCH_ROWS = 256

_BOM = b"\xef\xbb\xbf"
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_PARQUET = b"PAR1"
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}


@dataclass
class InputSource:
    """An opened, checked input: call :meth:`items` once to read it.

    ``name`` names it in messages (the file name, ``stdin``, ``dataset``); ``path`` is what was
    given (a path, ``-``, or None for an object); ``format`` is one of :data:`FORMATS` (``rows``
    for Python objects); ``extra_schema`` is the pyarrow schema of the columns that pass through
    to the output (parquet and ``datasets`` inputs; None otherwise), so a parquet output keeps
    their types.
    """

    name: str
    path: str | None
    format: str
    fields: FieldMap
    duplicates: str
    _rows: Callable[[], Iterator[tuple[str, Any]]] = field(repr=False)
    _count: Callable[[], int | None] = field(repr=False, default=lambda: None)
    extra_schema: Any = field(default=None, repr=False)

    def count(self) -> int | None:
        """How many rows (for a progress line): from metadata where there is some, else one
        extra pass over a file; None for stdin and iterators."""
        return self._count()

    def items(self) -> Iterator[Item | ItemError]:
        """One :class:`Item` or :class:`ItemError` per row, in order (blank lines of text skip).
        An input that holds no row at all raises :class:`InputError` at the end."""
        index = 0
        for where, row in self._rows():
            if isinstance(row, ItemError):
                row.index = index
                if getattr(row, "positional_id", False):  # a readable row without an id field
                    row.id = str(index)
                yield row
            else:
                try:
                    yield parse_item(row, index, where, fields=self.fields, duplicates=self.duplicates)
                except ItemError as exc:
                    yield exc
            index += 1
        if index == 0:
            raise InputError(f"{self.name} holds no rows: nothing to rank")


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format the path's name (or, for a folder, its content) says; ``jsonl`` for other names."""
    p = Path(path)
    if p.is_dir():
        return "datasets"
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return _EXTENSIONS.get(suffixes[-1], "jsonl") if suffixes else "jsonl"


def open_input(
    source: Any, *, format: str | None = None, fields: FieldMap | None = None, duplicates: str = "merge"
) -> InputSource:
    """Open and check an input.

    ``source``: a path (``str`` or path-like; ``"-"`` is stdin), a ``datasets.Dataset`` or
    ``IterableDataset``, or any iterable of row mappings. ``format``: one of :data:`FORMATS`
    (None: from the path; an override for a path only). ``fields``: which row fields hold the
    prompt, responses, id and scores. ``duplicates``: ``"merge"`` or ``"error"`` (see
    :func:`tourney.items.parse_item`). Raises :class:`InputError` (or ``FileNotFoundError``,
    ``IsADirectoryError``) for an input that cannot be read as asked, before any row is read.
    """
    fields = fields or DEFAULT_FIELDS
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown input format {format!r}; known: {', '.join(FORMATS)}")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path == "-":
            return _open_stdin(format, fields, duplicates)
        return _open_path(path, format, fields, duplicates)
    if format is not None:
        raise InputError(f"--input-format applies to a path, not to a {type(source).__name__}")
    if _is_dataset(source):
        return _open_dataset(source, fields, duplicates)
    if isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping)):
        rows = source
        return InputSource(
            "input", None, "rows", fields, duplicates, lambda: ((f"item {k}", r) for k, r in enumerate(rows))
        )
    raise TypeError(f"an input is a path, a datasets.Dataset or an iterable of rows, not a {type(source).__name__}")


# -- paths ------------------------------------------------------------------------------------
def _open_path(path: str, format: str | None, fields: FieldMap, duplicates: str) -> InputSource:
    p = Path(path)
    if p.is_dir():
        if format not in (None, "datasets"):
            raise IsADirectoryError(f"input {path} is a directory, not a {format} file")
        return _open_datasets_dir(p, fields, duplicates)
    if not p.exists():
        raise FileNotFoundError(f"input file {path} does not exist")
    if not p.is_file():
        raise InputError(
            f"input {path} is not a regular file (a device, a pipe or a socket): "
            "to read a stream, pipe it to stdin and give '-'"
        )
    guessed = detect_format(p)
    fmt = format or guessed
    how = f"--input-format {format}" if format else f"its name ({p.name})"
    with p.open("rb") as fh:
        head = fh.read(8)
    compression = _compression(head)
    suffix = p.suffix.lower()
    if suffix in _COMPRESSED and compression != _COMPRESSED[suffix]:
        raise InputError(
            f"{path} is named {suffix} but is not {_COMPRESSED[suffix]}-compressed "
            f"({_looks_like(head)}): rename it or recompress it"
        )
    if fmt == "datasets":
        raise InputError(f"{path} is a file; the datasets format is a folder written by save_to_disk")
    if head.startswith(_PARQUET) and fmt != "parquet":
        if format is None and suffix not in _EXTENSIONS and suffix not in _COMPRESSED:
            fmt = "parquet"  # a name that says nothing: the content decides
        else:
            raise InputError(
                f"{path} is a parquet file (it starts with PAR1), but {how} chose {fmt}: use --input-format parquet"
            )
    if fmt == "parquet":
        if compression is not None:
            raise InputError(
                f"{path} is {compression}-compressed: a parquet file compresses inside itself; decompress it first"
            )
        return _open_parquet(p, fields, duplicates, how)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            f"{path} is UTF-16 text (byte order mark {head[:2].hex(' ').upper()}): "
            "tourney reads UTF-8; re-encode it, e.g. iconv -f utf-16 -t utf-8"
        )

    def opener() -> IO[bytes]:
        return _binary(p, compression)

    first = _first_char(opener())
    if first is None:
        raise InputError(f"{path} holds no rows: nothing to rank")
    if first == "[" and fmt == "jsonl" and format is None and suffix not in _EXTENSIONS:
        fmt = "json"  # a name that says nothing: the content decides
    elif first == "[" and fmt == "jsonl":
        raise InputError(
            f"{path} starts with '[': it is one JSON array, not JSON lines ({how} chose jsonl): use --input-format json"
        )
    name = p.name
    if fmt == "json" and first == "[":
        return InputSource(
            name, path, "json", fields, duplicates, lambda: _json_array(opener(), name, fields), lambda: None
        )
    return InputSource(
        name,
        path,
        "jsonl",
        fields,
        duplicates,
        lambda: _json_lines(opener(), name, fields),
        lambda: _count_lines(opener()),
    )


def _open_stdin(format: str | None, fields: FieldMap, duplicates: str) -> InputSource:
    if format in ("parquet", "datasets"):
        raise InputError(f"{format} input cannot be read from stdin: give its path")
    raw = sys.stdin.buffer
    head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    compression = _compression(head)
    stream: IO[bytes] = _decompress(raw, compression) if compression else raw
    if format == "json":
        return InputSource("stdin", "-", "json", fields, duplicates, lambda: _json_array(stream, "stdin", fields))
    return InputSource("stdin", "-", "jsonl", fields, duplicates, lambda: _json_lines(stream, "stdin", fields))


def _compression(head: bytes) -> str | None:
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZSTD):
        return "zstd"
    return None


def _looks_like(head: bytes) -> str:
    if head.startswith(_PARQUET):
        return "it is a parquet file"
    if head.startswith(_GZIP):
        return "it is gzip-compressed"
    if head.startswith(_ZSTD):
        return "it is zstd-compressed"
    if not head:
        return "it is empty"
    return f"it starts with bytes {head[:4].hex(' ').upper()}"


def _binary(p: Path, compression: str | None) -> IO[bytes]:
    fh = p.open("rb")
    return _decompress(fh, compression) if compression else fh


def _decompress(fh: IO[bytes], compression: str) -> IO[bytes]:
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    try:
        import zstandard
    except ImportError:
        raise MissingExtraError("zstandard", "data", "reading zstd-compressed (.zst) input") from None
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, closefd=True))


def _first_char(stream: IO[bytes]) -> str | None:
    """The first character that is not whitespace (a BOM skipped), or None for an empty input."""
    import gzip

    try:
        with stream:
            start = True
            while True:
                chunk = stream.read(1 << 16)
                if not chunk:
                    return None
                if start and chunk.startswith(_BOM):
                    chunk = chunk[3:]
                start = False
                stripped = chunk.lstrip()
                if stripped:
                    return chr(stripped[0]) if stripped[0] < 128 else stripped[:4].decode("utf-8", "replace")[0]
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read the input: {type(exc).__name__}: {exc}") from exc


def _count_lines(stream: IO[bytes]) -> int:
    with stream:
        return sum(1 for line in stream if line.strip())


# -- JSON lines and arrays ------------------------------------------------------------------------
def _json_lines(stream: IO[bytes], name: str, fields: FieldMap) -> Iterator[tuple[str, Any]]:
    """``(where, row)`` per non-blank line; a row that cannot be decoded is an :class:`ItemError`."""
    with stream:
        for no, raw in enumerate(_read_lines(stream, name), 1):
            if no == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            if not raw.strip():
                continue
            where = f"{name} line {no}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield where, _bad_utf8(raw, exc, where, fields)
                continue
            try:
                yield where, json.loads(text)
            except ValueError as exc:
                yield (
                    where,
                    ItemError(
                        f"malformed JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})", where
                    ),
                )
            except RecursionError:
                yield where, ItemError("malformed JSON (nested too deeply)", where)


def _read_lines(stream: IO[bytes], name: str) -> Iterator[bytes]:
    """The stream's lines; a stream that breaks (a truncated or corrupt gzip/zstd file, an I/O
    error) is an :class:`InputError` naming the input and the last line read."""
    no = 0
    it = iter(stream)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except Exception as exc:  # gzip: EOFError, BadGzipFile; zstandard: ZstdError; OSError
            raise InputError(f"{name}: cannot read past line {no}: {type(exc).__name__}: {exc}") from exc
        no += 1
        yield raw


def _bad_utf8(raw: bytes, exc: UnicodeDecodeError, where: str, fields: FieldMap) -> ItemError:
    """The error for a row with bytes that are not UTF-8: names the byte; keeps the row's id when
    the id itself is readable (the row is never ranked on replaced characters)."""
    bad = raw[exc.start : exc.end]
    message = (
        f"not valid UTF-8: byte{'s' if len(bad) > 1 else ''} {bad.hex(' ').upper()} at byte {exc.start + 1} "
        f"of the line ({exc.reason}); tourney reads UTF-8 text: re-encode the file "
        "(e.g. iconv -f latin1 -t utf-8)"
    )
    id_ = None
    try:
        obj = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        obj = None
    if isinstance(obj, Mapping):
        raw_id = obj.get(fields.id)
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            id_ = str(raw_id)
        elif isinstance(raw_id, str):
            try:
                raw_id.encode("utf-8")
                id_ = raw_id
            except UnicodeEncodeError:  # the bad bytes are in the id itself
                pass
    err = ItemError(message, where, id=id_)
    err.positional_id = isinstance(obj, Mapping) and fields.id not in obj  # type: ignore[attr-defined]
    return err


def _json_array(stream: IO[bytes], name: str, fields: FieldMap) -> Iterator[tuple[str, Any]]:
    """``(where, element)`` per element of one JSON array, decoded element by element (memory:
    one element and a read buffer). An element with bytes that are not UTF-8 fails alone;
    malformed JSON ends the array there (where the next element starts is unknown): that
    element is an error and the rest of the file is not read."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    buf = ""
    pos = 0
    eof = False
    chunk = 1 << 16
    k = 0

    def more(size: int) -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        try:
            data = stream.read(size)
        except Exception as exc:  # a truncated or corrupt compressed file, an I/O error
            raise InputError(f"{name}: cannot read the array past element {k}: {type(exc).__name__}: {exc}") from exc
        eof = not data
        if pos > (1 << 20):  # drop what was consumed
            buf, pos = buf[pos:], 0
        buf += utf8.decode(data, final=eof)
        return bool(data)

    def skip_ws() -> str | None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more(chunk):
                return None

    with stream:
        more(chunk)
        if buf.startswith("\ufeff"):
            pos = 1
        if skip_ws() != "[":
            yield f"{name} element 0", ItemError("expected a JSON array '[' at the start", f"{name}")
            return
        pos += 1
        if skip_ws() == "]":
            return
        while True:
            where = f"{name} element {k}"
            start = pos
            size = chunk
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    if more(size):
                        size *= 2  # a long element: read ever larger pieces (linear overall)
                        start = pos
                        continue
                    yield (
                        where,
                        ItemError(
                            f"malformed JSON ({exc.msg} at character {exc.pos - start + 1} of the "
                            "element): the rest of the array cannot be read",
                            where,
                        ),
                    )
                    return
                except RecursionError:
                    yield (
                        where,
                        ItemError("malformed JSON (nested too deeply): the rest of the array cannot be read", where),
                    )
                    return
            text = buf[start:end]
            pos = end
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = text[exc.start : exc.end].encode("utf-8", "surrogateescape")
                obj = ItemError(
                    f"not valid UTF-8: byte{'s' if len(bad) > 1 else ''} {bad.hex(' ').upper()} at "
                    f"character {exc.start + 1} of the element; tourney reads UTF-8 text: re-encode "
                    "the file",
                    where,
                    id=_readable_id(obj, fields),
                )
            yield where, obj
            k += 1
            c = skip_ws()
            if c == ",":
                pos += 1
                skip_ws()
                continue
            if c == "]":
                return
            yield (
                f"{name} element {k}",
                ItemError(
                    f"malformed JSON array: expected ',' or ']' after element {k - 1}, got "
                    f"{'the end of the file' if c is None else repr(c)}: the rest of the array cannot be read",
                    f"{name} element {k}",
                ),
            )
            return


def _readable_id(obj: Any, fields: FieldMap) -> str | None:
    if not isinstance(obj, Mapping):
        return None
    raw = obj.get(fields.id)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
            return raw
        except UnicodeEncodeError:
            return None
    return None


# -- parquet and datasets -------------------------------------------------------------------------
def _pyarrow(feature: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise MissingExtraError("pyarrow", "data", feature) from None
    return pyarrow


def _check_columns(names: list[str], fields: FieldMap, where: str) -> None:
    """Every field the map needs is a column (a dotted name: its first part); the optional id
    and scores may be absent."""
    have = set(names)
    required = [("--prompt-field", fields.prompt)] + [("--responses-field", r) for r in fields.responses]
    for flag, name in required:
        if name not in have and name.split(".")[0] not in have:
            raise InputError(
                f"{where} has no column '{name}' (columns: {', '.join(names) or 'none'}); choose the column with {flag}"
            )
    if len(fields.scores) > 1:
        absent = [s for s in fields.scores if s not in have and s.split(".")[0] not in have]
        if absent and len(absent) < len(fields.scores):
            raise InputError(
                f"{where} has no column '{absent[0]}' (columns: {', '.join(names)}); "
                "choose the columns with --scores-field"
            )


def _extra_schema(schema: Any, fields: FieldMap) -> Any:
    pa = _pyarrow("parquet output")
    consumed = fields.consumed
    return pa.schema([f for f in schema if f.name not in consumed])


def _batches_rows(batches: Iterable[Any], name: str) -> Iterator[tuple[str, Any]]:
    k = 0
    for batch in batches:
        for row in batch.to_pylist():
            yield f"{name} row {k}", row
            k += 1


def _open_parquet(p: Path, fields: FieldMap, duplicates: str, how: str) -> InputSource:
    _pyarrow("parquet input")
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
    except Exception as exc:  # pyarrow raises ArrowInvalid and OSError for files that are not parquet
        raise InputError(f"{p} is not a readable parquet file ({how} chose parquet): {exc}") from None
    schema = pf.schema_arrow
    _check_columns(schema.names, fields, str(p))
    if pf.metadata.num_rows == 0:
        raise InputError(f"{p} holds no rows: nothing to rank")

    def rows() -> Iterator[tuple[str, Any]]:
        f = pq.ParquetFile(p, pre_buffer=False)  # read page by page: memory per batch, not per row group
        try:
            yield from _batches_rows(f.iter_batches(batch_size=BATCH_ROWS, use_threads=False), p.name)
        finally:
            f.close()

    pf.close()
    total = pf.metadata.num_rows
    return InputSource(
        p.name, str(p), "parquet", fields, duplicates, rows, lambda: total, extra_schema=_extra_schema(schema, fields)
    )


def _open_datasets_dir(p: Path, fields: FieldMap, duplicates: str) -> InputSource:
    if (p / "dataset_dict.json").is_file():
        try:
            splits = json.loads((p / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        except (OSError, ValueError):
            splits = []
        raise InputError(
            f"{p} holds a DatasetDict (splits: {', '.join(splits) or '?'}): give one split's folder, "
            f"e.g. {p / (splits[0] if splits else 'train')}"
        )
    state_path = p / "state.json"
    if not state_path.is_file():
        raise IsADirectoryError(
            f"input {p} is a directory, not a file (nor a Hugging Face datasets folder "
            "written by save_to_disk: it has no state.json)"
        )
    pa = _pyarrow("datasets folder input")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        files = [p / f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{state_path} is not a datasets state file: {exc}") from None
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InputError(f"datasets folder {p} lacks its data file {missing[0].name}")
    if not files:
        raise InputError(f"{p} holds no rows: nothing to rank")
    try:
        with pa.OSFile(str(files[0])) as fh:
            schema = pa.ipc.open_stream(fh).schema
    except Exception as exc:
        raise InputError(f"{files[0]} is not an Arrow stream written by datasets: {exc}") from None
    _check_columns(schema.names, fields, str(p))

    def batches() -> Iterator[Any]:
        for f in files:
            with pa.OSFile(str(f)) as fh:  # read batch by batch, not memory-mapped
                reader = pa.ipc.open_stream(fh)
                for batch in reader:
                    for start in range(0, batch.num_rows, BATCH_ROWS):
                        yield batch.slice(start, BATCH_ROWS)

    def count() -> int:
        n = 0
        for f in files:
            with pa.memory_map(str(f)) as fh:
                n += sum(b.num_rows for b in pa.ipc.open_stream(fh))
        return n

    name = p.name
    return InputSource(
        name,
        str(p),
        "datasets",
        fields,
        duplicates,
        lambda: _batches_rows(batches(), name),
        count,
        extra_schema=_extra_schema(schema, fields),
    )


def _is_dataset(x: Any) -> bool:
    mod = type(x).__module__ or ""
    return mod.startswith("datasets.") and hasattr(x, "column_names")


def _open_dataset(ds: Any, fields: FieldMap, duplicates: str) -> InputSource:
    """A ``datasets.Dataset`` (read in batches of :data:`BATCH_ROWS`, plain Python values
    whatever its format) or an ``IterableDataset`` (row by row)."""
    names = list(ds.column_names or [])
    if names:
        _check_columns(names, fields, "the dataset")
    plain = ds.with_format(None) if hasattr(ds, "with_format") else ds
    if hasattr(ds, "num_rows") and not hasattr(ds, "n_shards"):  # a map-style Dataset
        if ds.num_rows == 0:
            raise InputError("the dataset holds no rows: nothing to rank")
        schema = ds.data.schema if hasattr(ds, "data") else None

        def rows() -> Iterator[tuple[str, Any]]:
            k = 0
            for cols in plain.iter(batch_size=BATCH_ROWS):
                keys = list(cols)
                for values in zip(*(cols[c] for c in keys)):
                    yield f"dataset row {k}", dict(zip(keys, values))
                    k += 1

        return InputSource(
            "dataset",
            None,
            "datasets",
            fields,
            duplicates,
            rows,
            lambda: ds.num_rows,
            extra_schema=None if schema is None else _extra_schema(schema, fields),
        )
    return InputSource(
        "dataset", None, "datasets", fields, duplicates, lambda: ((f"dataset row {k}", r) for k, r in enumerate(plain))
    )
