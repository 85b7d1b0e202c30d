"""The notebooks are stored executed (a reader of the repository sees their plots), with small,
machine-independent outputs, and they still run top to bottom (executed, not just opened) on
small settings and draw their plots. ``notebooks/regenerate.py`` produces the stored outputs."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT, require

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REGENERATE = ROOT / "notebooks" / "regenerate.py"
#: seconds one cell may take (the whole notebook runs in well under a minute on small settings)
CELL_TIMEOUT = 240
#: a stored notebook's size limit in bytes (issue 15: outputs under ~1 MB)
MAX_BYTES = 1_000_000
#: machine-specific absolute paths that must not appear in stored outputs
ABSOLUTE = re.compile(r"(?<![\w.])/(?:work|home|tmp|Users)/")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def regenerate_module() -> ModuleType:
    """notebooks/regenerate.py imported as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("tourney_nb_regenerate", REGENERATE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def output_text(output: dict) -> str:
    parts = [output.get("text", "") if isinstance(output.get("text"), str) else "".join(output.get("text", []))]
    parts += [output.get("evalue", ""), *output.get("traceback", [])]
    for mime, value in (output.get("data") or {}).items():
        if mime != "image/png":
            parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


def test_the_three_notebooks_are_there():
    assert {p.stem for p in NOTEBOOKS} >= {"strategies_compared", "position_bias", "dpo_mining"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_executed(path: Path):
    """What a reader of the repository sees: every code cell ran, in order, without error; at
    least one PNG plot; under 1 MB; no machine paths or timings; the first markdown cell names
    the regenerate command and the settings the outputs were made at."""
    nbformat = require("nbformat", "the notebooks extra")
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, f"{path.name} has no code"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        f"{path.name}: not stored executed top to bottom; run notebooks/regenerate.py"
    )
    pngs = 0
    for k, cell in enumerate(code, 1):
        assert "execution" not in cell.metadata, f"{path.name} cell {k}: nbclient timing metadata stored"
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} cell {k}: {out.get('ename')}: {out.get('evalue')}"
            text = output_text(out)
            assert "Traceback" not in text, f"{path.name} cell {k} prints a traceback"
            assert not ABSOLUTE.search(text) and str(ROOT) not in text, (
                f"{path.name} cell {k}: an absolute path in the output: {ABSOLUTE.search(text) or str(ROOT)}"
            )
            if "image/png" in out.get("data", {}):
                assert base64.b64decode(out.data["image/png"]).startswith(PNG_MAGIC)
                pngs += 1
    assert pngs >= 1, f"{path.name} stores no plot"
    settings = nb.metadata.get("tourney", {}).get("settings")
    assert settings in ("full", "small"), f"{path.name}: metadata.tourney.settings is {settings!r}"
    first = next(c for c in nb.cells if c.cell_type == "markdown").source
    assert "notebooks/regenerate.py" in first, f"{path.name}: the first markdown cell names no regenerate command"
    assert f"Stored outputs: {settings.upper()} settings" in first, (
        f"{path.name}: the first markdown cell does not say the outputs are at {settings} settings"
    )


def test_regenerate_check_passes_on_the_stored_notebooks():
    require("nbformat", "the notebooks extra")
    proc = subprocess.run(
        [sys.executable, str(REGENERATE), "--check"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok (") == len(NOTEBOOKS)


def test_regenerate_check_finds_stale_and_missing_outputs(tmp_path: Path):
    """--check is not a formality: an edited cell, a cell without outputs, an error output, a
    machine path and a notebook without plots are each reported."""
    nbformat = require("nbformat", "the notebooks extra")
    regen = regenerate_module()
    src = ROOT / "notebooks" / "dpo_mining.ipynb"
    assert regen.check(src) == []

    def variant(name: str, change) -> list[str]:
        nb = nbformat.read(src, as_version=4)
        change([c for c in nb.cells if c.cell_type == "code"])
        p = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, p)
        return regen.check(p)

    def edit(cells):
        cells[0].source += "\nprint('edited')"

    def unrun(cells):
        cells[-1].execution_count = None
        cells[-1].outputs = []

    def error(cells):
        cells[0].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[]))

    def path_leak(cells):
        cells[0].outputs.append(nbformat.v4.new_output("stream", name="stdout", text="read /home/me/data.jsonl\n"))

    def no_plots(cells):
        for c in cells:
            c.outputs = [o for o in c.outputs if "image/png" not in o.get("data", {})]

    assert any("edited after" in p for p in variant("edit", edit))
    problems = variant("unrun", unrun)
    assert any("not executed" in p for p in problems) and any("no PNG plot" in p for p in problems)
    assert any("ValueError: boom" in p for p in variant("error", error))
    assert any("absolute path" in p for p in variant("path", path_leak))
    assert variant("noplots", no_plots) == ["no PNG plot in the outputs"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_plots(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nbclient = require("nbclient", "the notebooks extra")
    nbformat = require("nbformat", "the notebooks extra")
    require("matplotlib", "the notebooks extra")
    require("ipykernel", "the notebooks extra")
    # a kernel spec for THIS interpreter (a plain "python3" spec may start another Python)
    spec_dir = tmp_path / "kernels" / "tourney-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "tourney test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("TOURNEY_NB_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)  # an in-memory copy: the stored file is not touched
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="tourney-test", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError (with the traceback) if any cell fails
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no plot"
