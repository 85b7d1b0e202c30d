"""Regenerate the stored outputs of the notebooks in this folder, or check them.

    .venv/bin/python notebooks/regenerate.py            # execute every notebook in place
    .venv/bin/python notebooks/regenerate.py position_bias.ipynb   # just one
    .venv/bin/python notebooks/regenerate.py --check    # verify the stored outputs (no kernel)

Why: a reader of the repository (GitHub, nbviewer) sees a notebook's stored outputs only, so
the notebooks are stored EXECUTED, with small outputs (PNG plots at a modest dpi, compact text
tables). This script is the one way they are produced, so a regeneration on the same code and
data gives the same bytes:

* each notebook runs top to bottom in a fresh kernel of THIS interpreter (a kernel spec written to
  a temporary ``JUPYTER_PATH``, so a ``python3`` spec of another Python is never picked), from
  the ``notebooks/`` folder, with ``PYTHONHASHSEED=0`` and the inline matplotlib backend;
* at the settings the notebook's metadata names (``metadata.tourney.settings``: ``"full"``, the
  notebook's documented settings, or ``"small"``, the ``TOURNEY_NB_SMALL=1`` settings CI runs,
  used where the full settings take more than about two minutes on a 2-core machine); the
  notebook's first markdown cell says which;
* what varies between runs is removed: nbclient's per-cell timing (``metadata.execution``), the
  kernel's name and Python version (the notebook-level ``kernelspec`` / ``language_info`` are
  restored to the generic ``python3`` ones);
* each code cell records the SHA-256 of its source (``metadata.tourney.source_sha256``), so
  ``--check`` can tell a cell edited after the last regeneration.

``--check`` (no kernel, a second or so) fails, listing every problem, when a notebook has a code
cell that was not executed, executed out of order, edited since, or ended in an error; has no PNG
plot; is 1 MB or more; or has an absolute path (``/work``, ``/home``, ``/tmp``, ``/Users``, the
repository's own path) or a traceback in its outputs. Exit status: 0 all good, 1 a problem
(listed on stderr), 2 bad arguments. Needs the ``notebooks`` extra (nbformat, nbclient, ipykernel,
matplotlib): ``pip install -e '.[notebooks]'``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: the command a notebook's first markdown cell names (repository-relative, no machine paths)
COMMAND = ".venv/bin/python notebooks/regenerate.py"
#: a stored notebook must stay under this many bytes (plots are PNG at a modest dpi)
MAX_BYTES = 1_000_000
#: seconds one cell may take before the run is abandoned
CELL_TIMEOUT = 900
#: settings names a notebook may declare in ``metadata.tourney.settings``
SETTINGS = ("full", "small")
#: the notebook-level metadata stored whatever kernel ran the notebook
GENERIC_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
#: absolute paths that must never reach a stored output (machine-specific; and the repo's own)
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:work|home|tmp|Users|root|private|var/folders)/")


def source_sha256(source: str) -> str:
    """SHA-256 (hex) of a cell's source text, as stored in ``metadata.tourney.source_sha256``."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def notebook_paths(names: list[str]) -> list[Path]:
    """The notebooks named (file names or paths; default every ``*.ipynb`` here), sorted."""
    if not names:
        return sorted(HERE.glob("*.ipynb"))
    out = []
    for name in names:
        p = Path(name)
        if not p.is_file():
            p = HERE / name
        if not p.is_file() or p.suffix != ".ipynb":
            raise SystemExit(f"regenerate.py: no notebook {name!r} (expected a .ipynb file in {HERE.name}/)")
        out.append(p.resolve())
    return out


def settings_of(nb: Any) -> str:
    """The settings a notebook is stored at (``metadata.tourney.settings``; default ``full``)."""
    s = nb.metadata.get("tourney", {}).get("settings", "full")
    if s not in SETTINGS:
        raise SystemExit(f"regenerate.py: metadata.tourney.settings is {s!r}; expected one of {SETTINGS}")
    return s


def _output_text(output: Any) -> str:
    """Every text an output carries (stream text, tracebacks, text/* and JSON data; not images)."""
    parts: list[str] = []
    if output.get("output_type") == "stream":
        parts.append(output.get("text", ""))
    if output.get("output_type") == "error":
        parts.extend([output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])])
    for mime, value in (output.get("data") or {}).items():
        if mime.startswith("image/") and mime != "image/svg+xml":
            continue
        parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


def check(path: Path) -> list[str]:
    """Problems with the stored notebook at ``path`` (empty when it is good); see the module doc."""
    import nbformat

    problems = []
    size = path.stat().st_size
    if size >= MAX_BYTES:
        problems.append(f"{size:,} bytes (limit {MAX_BYTES:,}): lower the dpi or the number of plots")
    nb = nbformat.read(path, as_version=4)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        problems.append(f"not a valid notebook: {exc.message}")
    pngs = 0
    expected = 1
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"code cell {i}"
        if not cell.source.strip():
            continue
        if cell.get("execution_count") is None:
            problems.append(f"{where} was not executed (no execution_count): regenerate")
        elif cell.execution_count != expected:
            problems.append(
                f"{where} has execution_count {cell.execution_count}, expected {expected} "
                "(executed out of order or partly): regenerate"
            )
        expected += 1
        stored = cell.metadata.get("tourney", {}).get("source_sha256")
        if stored != source_sha256(cell.source):
            problems.append(f"{where} was edited after its outputs were stored (source hash differs): regenerate")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"{where} ended in an error: {output.get('ename')}: {output.get('evalue')}")
            text = _output_text(output)
            if "Traceback (most recent call last)" in text:
                problems.append(f"{where} prints a traceback")
            m = ABSOLUTE_PATH.search(text)
            if m or str(ROOT) in text:
                shown = m.group(0) if m else str(ROOT)
                problems.append(f"{where} has an absolute path in its output ({shown!r}...)")
            if "image/png" in (output.get("data") or {}):
                pngs += 1
        if "execution" in cell.metadata:
            problems.append(f"{where} keeps nbclient's timing metadata (metadata.execution)")
    if pngs == 0:
        problems.append("no PNG plot in the outputs")
    return problems


def _kernel_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary JUPYTER_PATH with one kernel spec, ``tourney-regenerate``, for this interpreter."""
    tmp = tempfile.TemporaryDirectory(prefix="tourney-nb-")
    spec = Path(tmp.name) / "kernels" / "tourney-regenerate"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "tourney regenerate",
                "language": "python",
            }
        )
    )
    return tmp


def execute(path: Path, settings: str | None = None, timeout: int = CELL_TIMEOUT) -> tuple[str, float]:
    """Execute the notebook at ``path`` in place (see the module doc); return the settings used
    and the seconds it took. Raises nbclient's CellExecutionError (with the traceback) when a
    cell fails; the stored file is then left as it was."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    settings = settings or settings_of(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    env_keys = ("JUPYTER_PATH", "TOURNEY_NB_SMALL", "MPLBACKEND", "PYTHONHASHSEED")
    saved = {k: os.environ.get(k) for k in env_keys}
    with _kernel_dir() as kernels:
        os.environ["JUPYTER_PATH"] = kernels
        os.environ["TOURNEY_NB_SMALL"] = "1" if settings == "small" else "0"
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        os.environ["PYTHONHASHSEED"] = "0"
        try:
            t0 = time.perf_counter()
            client = nbclient.NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="tourney-regenerate",
                resources={"metadata": {"path": str(path.parent)}},
            )
            client.execute()
            seconds = time.perf_counter() - t0
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)
            cell.metadata.setdefault("tourney", {})["source_sha256"] = source_sha256(cell.source)
    for key, value in GENERIC_METADATA.items():
        nb.metadata[key] = value
    nb.metadata.setdefault("tourney", {})["settings"] = settings
    nbformat.validate(nb)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        nbformat.write(nb, fh)
    os.replace(tmp, path)
    return settings, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="notebooks/regenerate.py",
        description="Execute the notebooks in place (stored with outputs), or --check them.",
    )
    ap.add_argument("notebooks", nargs="*", help="notebook files (default: every notebooks/*.ipynb)")
    ap.add_argument(
        "--check",
        action="store_true",
        help="verify the stored outputs (every code cell executed in order, unedited since, "
        "no error, a PNG plot, under 1 MB, no absolute paths); runs no kernel",
    )
    ap.add_argument(
        "--settings",
        choices=SETTINGS,
        default=None,
        help="override the notebook's stored settings (metadata.tourney.settings)",
    )
    ap.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds one cell may take")
    args = ap.parse_args(argv)
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as exc:
        print(f"regenerate.py: {exc}; install the notebooks extra: pip install -e '.[notebooks]'", file=sys.stderr)
        return 2
    paths = notebook_paths(args.notebooks)
    bad = 0
    for path in paths:
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        if not args.check:
            settings, seconds = execute(path, args.settings, args.timeout)
            print(
                f"{rel}: executed at {settings} settings in {seconds:.0f} s, {path.stat().st_size / 1000:.0f} kB",
                flush=True,
            )
        problems = check(path)
        for p in problems:
            print(f"{rel}: {p}", file=sys.stderr)
        if args.check and not problems:
            print(f"{rel}: ok ({path.stat().st_size / 1000:.0f} kB)")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
