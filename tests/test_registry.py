"""One registry mechanism for judges, strategies and formats: decorators, lazy import targets,
aliases and third-party plug-ins through entry points, all through the registry's own API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tourney.errors import SpecError
from tourney.judges import JUDGES
from tourney.judges.formats import FORMAT_REGISTRY, FORMATS
from tourney.registry import Registry
from tourney.strategy import STRATEGIES

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = '''
from tourney.judges.simulated import SimulatedJudge
from tourney.strategy import Strategy


class PluginJudge(SimulatedJudge):
    """A third-party judge (the simulated judge under another name)."""


class PluginStrategy(Strategy):
    """A third-party strategy that never proposes anything."""

    def propose(self):
        return []

    def observe(self, result):
        pass

    @property
    def done(self):
        return True

    def ranking(self):
        from tourney.types import Ranking
        return Ranking(tuple(range(self.n)), (0.0,) * self.n)
'''


def _plugin_distribution(root: Path, module: str = "tourney_test_plugin") -> Path:
    """A module and an installed-distribution record (``*.dist-info``) declaring its entry points,
    as ``pip install`` of a plug-in package would leave them on ``sys.path``."""
    (root / f"{module}.py").write_text(PLUGIN, encoding="utf-8")
    info = root / "tourney_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tourney-test-plugin\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
        [tourney.judges]
        plugin_judge = {module}:PluginJudge
        simulated = {module}:PluginJudge

        [tourney.strategies]
        plugin_strategy = {module}:PluginStrategy
        """),
        encoding="utf-8",
    )
    return root


def _python(code: str, *paths: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with ``paths`` (and this checkout) first on sys.path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*(str(p) for p in paths), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def test_register_and_get_are_case_and_dash_insensitive():
    reg: Registry[object] = Registry("widget")

    @reg.register("My-Widget")
    class W:
        pass

    assert reg.get("my_widget") is W and reg.get(" MY-WIDGET ") is W and "my-widget" in reg
    assert W.name == "my_widget"
    assert reg.names() == ["my_widget"]
    with pytest.raises(SpecError, match="registered twice"):
        reg.register("my_widget")(type("Other", (), {}))
    reg.unregister("my-widget")
    assert reg.names() == [] and "my_widget" not in reg


def test_a_lazy_entry_is_imported_on_first_get_only(tmp_path, monkeypatch):
    (tmp_path / "tourney_test_lazy.py").write_text("class Thing:\n    pass\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[type] = Registry("widget")
    reg.register_lazy("thing", "tourney_test_lazy:Thing")
    assert reg.names() == ["thing"] and "thing" in reg
    assert "tourney_test_lazy" not in sys.modules
    thing = reg.get("thing")
    assert thing.__module__ == "tourney_test_lazy" and thing.name == "thing"
    assert reg.get("thing") is thing
    monkeypatch.delitem(sys.modules, "tourney_test_lazy")


def test_lazy_entries_fail_clearly():
    reg: Registry[object] = Registry("widget")
    with pytest.raises(SpecError, match="not of the form 'module:attr'"):
        reg.register_lazy("x", "no_colon_here")
    reg.register_lazy("gone", "tourney_no_such_module:Thing")
    for _ in range(2):  # the entry stays: each lookup fails the same way
        with pytest.raises(SpecError, match=r"widget 'gone' could not be loaded from tourney_no_such_module:Thing"):
            reg.get("gone")
    reg.register_lazy("typo", "tourney.errors:NoSuchError")
    with pytest.raises(SpecError, match="could not be loaded"):
        reg.get("typo")
    with pytest.raises(SpecError, match="registered twice"):
        reg.register_lazy("typo", "tourney.errors:SpecError")
    with pytest.raises(SpecError, match=r"unknown widget 'nope'; known: gone, typo"):
        reg.get("nope")


def test_aliases_resolve_and_are_listed_for_an_unknown_name():
    reg: Registry[object] = Registry("colour")
    reg.register("red")(red := type("Red", (), {}))
    reg.alias("crimson", "red")
    assert reg.get("Crimson") is red and "crimson" in reg
    with pytest.raises(SpecError, match=r"unknown colour 'blue'; known: red \(aliases: crimson\)"):
        reg.get("blue")


def test_judges_strategies_and_formats_use_the_registry():
    assert {"simulated", "replay", "vllm", "openai"} <= set(JUDGES.names())
    assert {"knockout", "adaptive"} <= set(STRATEGIES.names())
    assert sorted(FORMATS) == FORMAT_REGISTRY.names()
    assert FORMAT_REGISTRY.get("rm-r1-deepseek") is FORMATS["rm_r1"]


def test_heavy_judges_are_listed_without_importing_their_modules():
    out = _python(
        "import sys; from tourney.judges import JUDGES; names = JUDGES.names();"
        "print('vllm' in names, 'tourney.judges.vllm_judge' in sys.modules,"
        " 'tourney.judges.openai_judge' in sys.modules)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False"]


def test_entry_point_plugins_register_judges_and_strategies(tmp_path):
    """A distribution with entry points in the groups tourney.judges / tourney.strategies adds
    components by name; a plug-in never replaces a built-in (it is skipped with a warning)."""
    _plugin_distribution(tmp_path)
    code = textwrap.dedent("""\
        import logging, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
        from tourney.judges import JUDGES, build_judge
        from tourney.judges.simulated import SimulatedJudge
        from tourney.strategy import STRATEGIES, build_strategy
        names = JUDGES.names()
        print("listed", "plugin_judge" in names, "tourney_test_plugin" in sys.modules)
        judge = build_judge("plugin_judge:seed=2")
        print("built", type(judge).__name__, judge.seed)
        print("builtin kept", JUDGES.get("simulated") is SimulatedJudge)
        print("strategy", build_strategy("plugin_strategy").cls.__name__)
        """)
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "listed True False" in lines
    assert "built PluginJudge 2" in lines
    assert "builtin kept True" in lines
    assert "strategy PluginStrategy" in lines
    assert any("ignoring judge plug-in 'simulated'" in line and "the name is taken" in line for line in lines)


def test_a_lazily_imported_module_may_register_itself(tmp_path, monkeypatch):
    """A plug-in module decorated with the registry's own decorator and also declared as a lazy
    entry (an entry point) resolves to the one object, without a 'registered twice' error."""
    (tmp_path / "tourney_test_selfreg.py").write_text(
        "from tests.test_registry import SELF_REGISTERING\n"
        "@SELF_REGISTERING.register('thing')\nclass Thing:\n    pass\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    SELF_REGISTERING.register_lazy("thing", "tourney_test_selfreg:Thing")
    thing = SELF_REGISTERING.get("thing")
    assert thing.__name__ == "Thing" and SELF_REGISTERING.get("thing") is thing
    monkeypatch.delitem(sys.modules, "tourney_test_selfreg")


SELF_REGISTERING: Registry[type] = Registry("widget")
