"""Name -> component registries and spec strings.

A *spec string* names a component and, optionally, its argument and options::

    knockout                       name only
    knockout:votes=3,both_orders=true
    simulated:noise=1.5,position_bias=0.2
    replay:path/to/judgements.jsonl     a positional argument (a path, a model, a URL)

After the first ``:``, a text made only of ``key=value`` pairs separated by commas is read as
options; anything else is the positional argument (so paths and URLs with ``:`` or ``,`` work).
Options can also be given separately (``--judge-opt key=value``). Values are parsed as JSON
where possible (``3`` -> int, ``true`` -> bool, ``0.5`` -> float), else kept as strings.

Every built component records its spec (:func:`spec_dict`), so a result names exactly what
produced it and can be rebuilt from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, TypeVar

from .errors import SpecError

__all__ = ["Registry", "Spec", "parse_spec", "parse_value", "parse_options"]

T = TypeVar("T")

_OPTIONS_RE = re.compile(r"^\s*[A-Za-z_][\w.-]*\s*=[^,]*(,\s*[A-Za-z_][\w.-]*\s*=[^,]*)*\s*$")


def parse_value(text: str) -> Any:
    """``'3'`` -> 3, ``'true'`` -> True, ``'0.5'`` -> 0.5, ``'null'`` -> None, else the text."""
    t = text.strip()
    try:
        return json.loads(t)
    except ValueError:
        low = t.lower()
        if low in ("true", "yes", "on"):
            return True
        if low in ("false", "no", "off"):
            return False
        return t


def parse_options(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Parse ``"a=1,b=x"`` (or a list of ``key=value`` strings, or a mapping) into a dict."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    items = text.split(",") if isinstance(text, str) else list(text)
    out: dict[str, Any] = {}
    for item in items:
        if not item.strip():
            continue
        if "=" not in item:
            raise SpecError(f"option {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = parse_value(value)
    return out


@dataclass(frozen=True)
class Spec:
    name: str
    arg: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        s = self.name
        if self.arg is not None:
            s += ":" + self.arg
        elif self.options:
            s += ":" + ",".join(f"{k}={_fmt(v)}" for k, v in sorted(self.options.items()))
        return s

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.arg is not None:
            d["arg"] = self.arg
        d["options"] = dict(sorted(self.options.items()))
        return d


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def parse_spec(text: str, extra_options: Mapping[str, Any] | None = None) -> Spec:
    """Split ``name[:arg-or-options]`` into a :class:`Spec`; see the module docstring."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty spec: expected NAME or NAME:ARGUMENT")
    name, sep, rest = text.strip().partition(":")
    name = name.strip().lower().replace("-", "_")
    arg: str | None = None
    options: dict[str, Any] = {}
    if sep:
        if rest and _OPTIONS_RE.match(rest):
            options = parse_options(rest)
        elif rest:
            arg = rest
        else:
            raise SpecError(f"spec {text!r} has an empty argument after ':'")
    if extra_options:
        options.update(parse_options(extra_options))
    return Spec(name, arg, options)


class Registry(Generic[T]):
    """Components registered by name with a decorator, looked up from spec strings.

    ``loader`` is called once before the first lookup to import the modules that register
    (so ``strategies/`` files register themselves when the package is imported).
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loader = loader
        self._loaded = loader is None

    def register(self, name: str) -> Callable[[T], T]:
        key = name.lower()

        def deco(obj: T) -> T:
            if key in self._items and self._items[key] is not obj:
                raise SpecError(f"{self.kind} {name!r} is registered twice")
            self._items[key] = obj
            try:
                obj.name = key  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return deco

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader()

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._items)

    def get(self, name: str) -> T:
        self._ensure_loaded()
        key = name.lower().replace("-", "_")
        if key not in self._items:
            raise SpecError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._items[key]

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name.lower() in self._items
