"""The notebooks run top to bottom (executed, not just opened) on small settings and draw their
plots; they are stored with their outputs cleared."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, require

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: seconds one cell may take (the whole notebook runs in well under a minute on small settings)
CELL_TIMEOUT = 240


def test_the_three_notebooks_are_there():
    assert {p.stem for p in NOTEBOOKS} >= {"strategies_compared", "position_bias", "dpo_mining"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path: Path):
    nbformat = require("nbformat", "the notebooks extra")
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                f"{path.name}: store notebooks with their outputs cleared"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_plots(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nbclient = require("nbclient", "the notebooks extra")
    nbformat = require("nbformat", "the notebooks extra")
    require("matplotlib", "the notebooks extra")
    require("ipykernel", "the notebooks extra")
    # a kernel spec for THIS interpreter (a plain "python3" spec may start another Python)
    spec_dir = tmp_path / "kernels" / "tourney-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tourney test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("TOURNEY_NB_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="tourney-test",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError (with the traceback) if any cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no plot"
