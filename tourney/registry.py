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

import contextlib
import importlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import MissingExtraError, SpecError

__all__ = ["Registry", "Spec", "parse_spec", "parse_value", "parse_options"]

T = TypeVar("T")

log = logging.getLogger("tourney")

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
    """Components registered by name, looked up from spec strings.

    Three ways in, all through this API (nothing outside writes the registry's tables):

    * ``@REGISTRY.register("name")`` on a class or object (it gets ``.name`` set to the name);
    * :meth:`register_lazy` with an import target ``"package.module:attr"``, imported on the
      first :meth:`get` of that name (heavy backends: the module is not even imported before);
    * :meth:`load_entry_points` for third-party plug-ins: each entry point of an installed
      distribution's group (``tourney.judges``, ``tourney.strategies``) becomes a lazy entry.

    ``loader`` is called once before the first lookup to import the modules that register
    (so ``strategies/`` files register themselves when the package is imported). Names are
    case-insensitive and ``-`` equals ``_``; :meth:`alias` adds other spellings.
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._loader = loader
        self._loaded = loader is None

    @staticmethod
    def _key(name: str) -> str:
        return str(name).strip().lower().replace("-", "_")

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``."""
        key = self._key(name)

        def deco(obj: T) -> T:
            if (key in self._items and self._items[key] is not obj) or key in self._lazy:
                raise SpecError(f"{self.kind} {name!r} is registered twice")
            self._items[key] = obj
            with contextlib.suppress(AttributeError, TypeError):  # an object without a settable name
                obj.name = key  # type: ignore[attr-defined]
            return obj

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``name`` as ``"package.module:attr"``, imported on the first :meth:`get`.

        A name already registered raises :class:`SpecError` (as :meth:`register` does)."""
        key = self._key(name)
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise SpecError(f"{self.kind} {name!r}: import target {target!r} is not of the form 'module:attr'")
        if key in self._items or (key in self._lazy and self._lazy[key] != target):
            raise SpecError(f"{self.kind} {name!r} is registered twice")
        self._lazy[key] = target

    def alias(self, name: str, target: str) -> None:
        """Accept ``name`` as another spelling of the registered name ``target``."""
        self._aliases[self._key(name)] = self._key(target)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a registered or lazy entry); unknown names are ignored.
        For tests and plug-ins that register temporary components."""
        key = self._key(name)
        self._items.pop(key, None)
        self._lazy.pop(key, None)

    def load_entry_points(self, group: str) -> None:
        """Register every entry point of ``group`` in the installed distributions as a lazy
        entry (imported on first use). A plug-in never replaces a name already registered:
        it is skipped with a warning naming both."""
        from importlib.metadata import entry_points

        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            key = self._key(ep.name)
            if key in self._items or key in self._lazy:
                if self._lazy.get(key) != ep.value:
                    log.warning(
                        "ignoring %s plug-in %r (%s, entry point group %s): the name is taken",
                        self.kind,
                        ep.name,
                        ep.value,
                        group,
                    )
                continue
            try:
                self.register_lazy(ep.name, ep.value)
            except SpecError as exc:
                log.warning("ignoring %s plug-in %r (entry point group %s): %s", self.kind, ep.name, group, exc)

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader()

    def names(self) -> list[str]:
        """Every registered name (lazy ones included, without importing them), sorted."""
        self._ensure_loaded()
        return sorted({*self._items, *self._lazy})

    def get(self, name: str) -> T:
        """The component called ``name``; a lazy entry is imported now (once).

        Raises :class:`SpecError` for an unknown name (listing the known ones) and for a lazy
        entry whose module or attribute cannot be loaded (:class:`MissingExtraError` passes
        through: it names the extra to install)."""
        self._ensure_loaded()
        key = self._key(name)
        key = self._aliases.get(key, key)
        if key in self._items:
            return self._items[key]
        target = self._lazy.get(key)
        if target is None:
            aliases = f" (aliases: {', '.join(sorted(self._aliases))})" if self._aliases else ""
            raise SpecError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}{aliases}")
        module, _, attr = target.partition(":")
        del self._lazy[key]  # the module may register the name itself while it is imported
        try:
            obj: T = getattr(importlib.import_module(module), attr)
        except BaseException as exc:
            self._lazy[key] = target  # the next get tries again and fails the same way
            if isinstance(exc, MissingExtraError) or not isinstance(exc, (ImportError, AttributeError)):
                raise  # a MissingExtraError already names the extra to install
            raise SpecError(f"{self.kind} {key!r} could not be loaded from {target}: {exc}") from exc
        if self._items.get(key) is not obj:
            self.register(key)(obj)
        return obj

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        key = self._key(name)
        key = self._aliases.get(key, key)
        return key in self._items or key in self._lazy
