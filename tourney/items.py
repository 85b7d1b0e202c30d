"""Input items: one prompt and its candidate responses, parsed and validated from one input row.

Input row (a JSONL line, a JSON array element, a parquet or ``datasets`` row)::

    {"id": "optional", "prompt": "question" | [{"role": ..., "content": ...}, ...],
     "responses": ["candidate 0", "candidate 1", ...], "scores": [optional latent qualities]}

The field names are a :class:`FieldMap` (``--prompt-field``, ``--responses-field``,
``--id-field``, ``--scores-field``): the responses (and the scores) come from one list field or
from several fields, one candidate each; a name with dots (``a.b``) reaches into nested
objects when the row has no field of that exact name. Every other top-level field of the row is
kept as :attr:`Item.extra` and written to the output row unchanged (see
:meth:`tourney.types.PromptResult.to_json`).

``scores`` is only used by the simulated judge (a known truth for experiments; it reaches the
judge through :meth:`~tourney.judges.base.Judge.for_item`). Validation errors name the row and
the field; a bad row never stops the others, and keeps its own ``id`` where it can be read
(:class:`ItemError`).

Identical responses (``duplicates="merge"``, the default) are judged once: the scheduler runs
the tournament on :meth:`Item.merged` (the distinct responses) and :meth:`Item.unmerge` puts
the copies back right after their original in the ranking, with the original's score, and
lists them in the result's ``duplicates``. ``duplicates="error"`` refuses such an item (the
behaviour before merging existed).

Results (one per item) are :class:`tourney.types.PromptResult`; ``PromptResult``, ``dumps`` and
``response_key`` are still importable from here for code written before they moved.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import InputError

# moved: results to tourney.types, content keys to tourney.hashing (explicit re-exports for older imports)
from .hashing import response_key as response_key
from .types import Prompt
from .types import PromptResult as PromptResult
from .types import dumps as dumps

__all__ = ["DUPLICATE_POLICIES", "FieldMap", "Item", "ItemError", "parse_item", "read_items"]

#: what to do with identical responses of one item: judge them once ("merge") or fail the item ("error")
DUPLICATE_POLICIES = ("merge", "error")

_MISSING = object()


class ItemError(InputError):
    """A bad input row, with what could still be read of it.

    ``index`` is the row's position among the input's items (0-based, blank lines not
    counted); ``id`` is the row's own id when it could be read (a valid string or integer id
    field), its position as text when the row has no id field (the same default a good row
    gets), and None when the row itself could not be read (not valid UTF-8 JSON, not an
    object) or its id field is invalid; ``extra`` holds the row's other fields when the row was
    an object (they pass through to its output row like a good row's).
    """

    def __init__(
        self,
        message: str,
        where: str | None = None,
        *,
        index: int | None = None,
        id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        super().__init__(message, where)
        self.index = index
        self.id = id
        self.extra: Mapping[str, Any] = extra or {}


@dataclass(frozen=True)
class FieldMap:
    """Which fields of an input row hold the prompt, the responses, the id and the scores.

    ``responses`` (and ``scores``) name one field holding a list, or several fields holding one
    candidate (score) each, in candidate order. A name with dots (``a.b``) reaches into nested
    objects when the row has no field of that exact name. ``id`` and ``scores`` are optional in
    a row (no id: the row's position; no scores: none).
    """

    prompt: str = "prompt"
    responses: tuple[str, ...] = ("responses",)
    id: str = "id"
    scores: tuple[str, ...] = ("scores",)

    def __post_init__(self) -> None:
        for name in ("prompt", "id"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"the {name} field name must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("responses", "scores"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, _names(value))
            elif not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"the {name} field names must be non-empty strings, got {value!r}")

    @classmethod
    def of(
        cls,
        prompt: str | None = None,
        responses: str | Sequence[str] | None = None,
        id: str | None = None,
        scores: str | Sequence[str] | None = None,
    ) -> FieldMap:
        """A field map from command-line style values (None keeps the default; ``"a,b,c"``
        names several fields)."""
        d = cls()
        return cls(
            prompt=prompt or d.prompt,
            responses=_names(responses) if responses else d.responses,
            id=id or d.id,
            scores=_names(scores) if scores else d.scores,
        )

    @property
    def consumed(self) -> frozenset[str]:
        """The top-level fields the map reads whole (they do not pass through to the output)."""
        return frozenset((self.prompt, *self.responses, self.id, *self.scores))

    def describe(self) -> dict[str, Any]:
        """The map as JSON (for the run's meta file)."""
        return {"prompt": self.prompt, "responses": list(self.responses), "id": self.id, "scores": list(self.scores)}


#: the default field names: ``prompt``, ``responses``, ``id``, ``scores``
DEFAULT_FIELDS = FieldMap()


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)
    if not names or not all(names):
        raise ValueError(f"expected one field name or a comma-separated list of them, got {value!r}")
    return names


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]``, else the dotted path ``a.b`` through nested objects, else ``_MISSING``."""
    if name in obj:
        return obj[name]
    if "." in name:
        cur: Any = obj
        for part in name.split("."):
            if not isinstance(cur, Mapping) or part not in cur:
                return _MISSING
            cur = cur[part]
        return cur
    return _MISSING


def _kind(x: Any) -> str:
    """What a value is, in the words of the input's own format (for error messages)."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, str):
        return "string"
    if isinstance(x, (int, float)):
        return "number"
    if isinstance(x, Mapping):
        return "object"
    if isinstance(x, (list, tuple)):
        inner = {_kind(v) for v in x}
        return f"list of {'/'.join(sorted(inner))}" if inner else "empty list"
    return type(x).__name__


def _present(obj: Mapping[str, Any]) -> str:
    keys = list(obj)
    shown = ", ".join(repr(k) for k in keys[:20]) + (f", ... ({len(keys)} fields)" if len(keys) > 20 else "")
    return shown or "none"


def _missing(name: str, obj: Mapping[str, Any], flag: str) -> str:
    return f"missing '{name}' (fields present: {_present(obj)}; choose another with {flag})"


@dataclass(frozen=True)
class Item:
    """One validated input row: a prompt, its candidates (numbered 0..n-1 in input order),
    optionally their latent qualities ``scores`` (the simulated judge's truth), and the row's
    other fields ``extra`` (passed through to the output unchanged).

    ``origin`` is set only on an item made by :meth:`merged`: ``origin[k]`` lists the input
    positions of distinct response k (the first is the one judged, the others its copies).
    """

    index: int  #: position in the input (0-based)
    id: str
    prompt: Prompt
    responses: tuple[str, ...]
    scores: tuple[float, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    origin: tuple[tuple[int, ...], ...] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.responses)

    def merged(self) -> Item:
        """This item with identical responses merged into one candidate (the first occurrence,
        with its score): ``self`` when the responses are all distinct. Identical means equal
        strings (no whitespace or case folding)."""
        if self.origin is not None:
            return self
        first: dict[str, int] = {}
        groups: list[list[int]] = []
        for k, r in enumerate(self.responses):
            g = first.get(r)
            if g is None:
                first[r] = len(groups)
                groups.append([k])
            else:
                groups[g].append(k)
        if len(groups) == len(self.responses):
            return self
        kept = [g[0] for g in groups]
        return replace(
            self,
            responses=tuple(self.responses[k] for k in kept),
            scores=None if self.scores is None else tuple(self.scores[k] for k in kept),
            origin=tuple(tuple(g) for g in groups),
        )

    def unmerge(self, result: PromptResult) -> PromptResult:
        """``result`` (ranked on this merged item) in the input's numbering: every copy right
        after its original in ``ranking``, with the original's score and uncertainty; match
        records name the originals; ``duplicates`` lists each group of identical responses
        (input positions, the judged one first). A result of an unmerged item is returned as is.
        ``info`` stays the strategy's own record of the tournament among the distinct responses."""
        o = self.origin
        if o is None or result.status == "failed":
            return result
        n = sum(len(g) for g in o)

        def spread(values: Sequence[float]) -> tuple[float, ...]:
            out = [0.0] * n
            for k, g in enumerate(o):
                for i in g:
                    out[i] = values[k]
            return tuple(out)

        return replace(
            result,
            best=None if result.best is None else o[result.best][0],
            ranking=tuple(i for k in result.ranking for i in o[k]),
            scores=spread(result.scores),
            uncertainty=None if result.uncertainty is None else spread(result.uncertainty),
            matches=tuple({**m, "first": o[m["first"]][0], "second": o[m["second"]][0]} for m in result.matches),
            duplicates=tuple(g for g in o if len(g) > 1),
        )


def _check_prompt(prompt: Any, where: str, name: str) -> Prompt:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError(f"'{name}' is empty", where)
        return prompt
    if isinstance(prompt, (list, tuple)) and prompt:
        msgs = []
        for k, m in enumerate(prompt):
            if (
                not isinstance(m, Mapping)
                or not isinstance(m.get("role"), str)
                or not isinstance(m.get("content"), str)
            ):
                raise InputError(
                    f"prompt message {k} must be an object with string 'role' and 'content', "
                    f"got {_kind(m)}" + (f" with content {_kind(m.get('content'))}" if isinstance(m, Mapping) else ""),
                    where,
                )
            msgs.append({"role": m["role"], "content": m["content"]})
        if msgs[-1]["role"] != "user":
            raise InputError("a chat prompt must end with a 'user' message", where)
        return tuple(msgs)
    raise InputError(
        f"'{name}' must be a non-empty string or a non-empty list of chat messages, got {_kind(prompt)}", where
    )


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an integer too large for a float
        return False


def _responses(obj: Mapping[str, Any], fields: FieldMap, where: str) -> list[str]:
    if len(fields.responses) == 1:
        name = fields.responses[0]
        responses = _get(obj, name)
        if responses is _MISSING:
            raise InputError(_missing(name, obj, "--responses-field"), where)
        if isinstance(responses, str):
            raise InputError(
                f"'{name}' is a string, not a list of strings (responses in several fields: --responses-field a,b,c)",
                where,
            )
        if not isinstance(responses, (list, tuple)):
            raise InputError(f"'{name}' must be a list of strings, got {_kind(responses)}", where)
        if len(responses) < 1:
            raise InputError(f"'{name}' must hold at least 1 response", where)
        for k, r in enumerate(responses):
            if not isinstance(r, str):
                raise InputError(f"response {k} is a {type(r).__name__}, not a string", where)
        return list(responses)
    out = []
    for name in fields.responses:
        r = _get(obj, name)
        if r is _MISSING:
            raise InputError(_missing(name, obj, "--responses-field"), where)
        if not isinstance(r, str):
            raise InputError(f"response field '{name}' is a {_kind(r)}, not a string", where)
        out.append(r)
    return out


def _scores(obj: Mapping[str, Any], fields: FieldMap, n: int, where: str) -> tuple[float, ...] | None:
    if len(fields.scores) == 1:
        name = fields.scores[0]
        scores = _get(obj, name)
        if scores is _MISSING or scores is None:
            return None
        label = f"'{name}'"
    else:
        got = [_get(obj, name) for name in fields.scores]
        if all(s is _MISSING or s is None for s in got):
            return None
        absent = [name for name, s in zip(fields.scores, got) if s is _MISSING]
        if absent:
            raise InputError(_missing(absent[0], obj, "--scores-field"), where)
        scores, label = got, f"the score fields {', '.join(fields.scores)}"
    if (
        not isinstance(scores, (list, tuple))
        or len(scores) != n
        or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and _finite(s) for s in scores)
    ):
        raise InputError(
            f"{label} must be a list of {n} finite numbers, got {_kind(scores)}"
            + (f" of length {len(scores)}" if isinstance(scores, (list, tuple)) else ""),
            where,
        )
    return tuple(float(s) for s in scores)


def _row_id(obj: Mapping[str, Any], fields: FieldMap, index: int) -> tuple[str | None, str | None]:
    """``(id, problem)``: the row's id (its position when it has none), or None and why not."""
    raw = _get(obj, fields.id)
    if raw is _MISSING:
        return str(index), None
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        return None, f"'{fields.id}' must be a string or an integer, got {_kind(raw)}"
    return str(raw), None


def parse_item(
    obj: Any, index: int, where: str | None = None, *, fields: FieldMap = DEFAULT_FIELDS, duplicates: str = "merge"
) -> Item:
    """Validate one decoded input row; raise :class:`ItemError` naming ``where`` (and keeping
    the row's id and other fields where they can be read).

    ``fields`` says which fields hold what; ``duplicates`` is ``"merge"`` (identical responses
    are allowed: the scheduler judges them once) or ``"error"`` (they fail the item)."""
    where = where or f"item {index}"
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    if not isinstance(obj, Mapping):
        raise ItemError(f"expected a JSON object, got {type(obj).__name__}", where, index=index)
    consumed = fields.consumed
    extra = {k: v for k, v in obj.items() if k not in consumed}
    id_, id_problem = _row_id(obj, fields, index)
    try:
        prompt_value = _get(obj, fields.prompt)
        if prompt_value is _MISSING:
            raise InputError(_missing(fields.prompt, obj, "--prompt-field"), where)
        prompt = _check_prompt(prompt_value, where, fields.prompt)
        responses = _responses(obj, fields, where)
        if duplicates == "error":
            seen: dict[str, int] = {}
            for k, r in enumerate(responses):
                if r in seen:
                    raise InputError(
                        f"responses {seen[r]} and {k} are identical; remove duplicates before ranking "
                        "(or rank with --duplicates merge)",
                        where,
                    )
                seen[r] = k
        scores = _scores(obj, fields, len(responses), where)
        if id_problem is not None:
            raise InputError(id_problem, where)
    except InputError as exc:
        raise ItemError(str(exc).removeprefix(f"{where}: "), where, index=index, id=id_, extra=extra) from None
    assert id_ is not None
    return Item(index=index, id=id_, prompt=prompt, responses=tuple(responses), scores=scores, extra=extra)


def parse_text(
    text: str, index: int, where: str, *, fields: FieldMap = DEFAULT_FIELDS, duplicates: str = "merge"
) -> Item | ItemError:
    """One row's JSON text -> an :class:`Item`, or the :class:`ItemError` saying why not."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return ItemError(
            f"malformed JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})", where, index=index
        )
    except RecursionError:
        return ItemError("malformed JSON (nested too deeply)", where, index=index)
    try:
        return parse_item(obj, index, where, fields=fields, duplicates=duplicates)
    except ItemError as exc:
        return exc


def read_items(
    lines: Iterable[str], source: str = "input", *, fields: FieldMap = DEFAULT_FIELDS, duplicates: str = "merge"
) -> Iterator[Item | ItemError]:
    """Parse JSONL lines (text); yields an :class:`Item` or the :class:`ItemError` for each line.

    Blank lines are skipped (they are not items); every other line yields exactly one entry,
    so output line k corresponds to the k-th non-blank input line. Files (any format, any
    encoding problem) are read by :func:`tourney.inputs.open_input`; this reads text already
    decoded.
    """
    index = 0
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if no == 1 and line.startswith("\ufeff"):  # a UTF-8 byte order mark
            line = line[1:]
        yield parse_text(line, index, f"{source} line {no}", fields=fields, duplicates=duplicates)
        index += 1
