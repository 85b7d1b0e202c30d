"""``tourney plot``: each kind of picture, as PNG and SVG, on the bundled example (issue 15
item 2). The images are opened and checked: the size in the file's own header (PNG IHDR, SVG
width/height) is the size reported, the PNG and the SVG of one figure agree (pixels at 100 dpi
vs points at 72 per inch), and the image is not blank."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tourney.cli import main

from .conftest import read_jsonl, require


@pytest.fixture(autouse=True)
def _matplotlib():
    require("matplotlib", "tourney plot draws with matplotlib (the 'plot' extra)")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def svg_size(path: Path) -> tuple[float, float]:
    head = path.read_text(encoding="utf-8")[:2000]
    m = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"', head)
    assert m, "no width/height in the SVG header"
    return float(m.group(1)), float(m.group(2))


def assert_not_blank_png(path: Path) -> None:
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    dark = (img[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.001 < dark < 0.5, f"{path.name}: {dark:.4f} of the pixels are dark"


def assert_not_blank_svg(path: Path, min_marks: int) -> None:
    text = path.read_text(encoding="utf-8")
    marks = text.count("<path") + text.count("<use")
    assert marks >= min_marks, f"{path.name}: only {marks} drawn elements"


def plot(capsys, *argv: str) -> tuple[int, int]:
    assert main(["plot", *argv]) == 0
    err = capsys.readouterr().err
    m = re.search(r"\((\w+), (\d+)x(\d+)\)", err)
    assert m, err
    return int(m.group(2)), int(m.group(3))


def check_pair(tmp_path: Path, capsys, stem: str, *argv: str, min_marks: int) -> tuple[int, int]:
    """Draw the same picture as PNG and SVG; check both files and their agreement."""
    png, svg = tmp_path / f"{stem}.png", tmp_path / f"{stem}.svg"
    reported_png = plot(capsys, *argv, "--out", str(png))
    reported_svg = plot(capsys, *argv, "--out", str(svg))
    w, h = png_size(png)
    assert (w, h) == reported_png and w > 200 and h > 150
    sw, sh = svg_size(svg)
    assert (round(sw), round(sh)) == reported_svg
    assert sw == pytest.approx(w * 72 / 100, abs=1.0) and sh == pytest.approx(h * 72 / 100, abs=1.0)
    assert_not_blank_png(png)
    assert_not_blank_svg(svg, min_marks)
    return w, h


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out.jsonl"
    assert main(["rank", "--out", str(out), "-q", "--no-progress"]) == 0
    return out


def test_bracket_of_a_knockout(example_run, tmp_path, capsys):
    big = check_pair(tmp_path, capsys, "prime", str(example_run), "--id", "prime-check", min_marks=20)
    small = check_pair(tmp_path, capsys, "units", str(example_run), "--id", "units", min_marks=5)
    # 6 candidates, 3 rounds, vs 2 candidates, 1 round: a wider and taller picture
    assert big[0] > small[0] and big[1] >= small[1]
    svg = (tmp_path / "prime.svg").read_text(encoding="utf-8")
    res = next(r for r in read_jsonl(example_run) if r["id"] == "prime-check")
    assert f"knockout bracket (best: #{res['best']})" in svg  # the title names the best pick
    assert main(["plot", str(example_run), "--out", str(tmp_path / "x.png")]) == 2  # several prompts: --id
    assert "pass --id" in capsys.readouterr().err


def test_leaderboard_from_a_rate_board_and_from_records(tmp_path, capsys):
    records = Path(__file__).resolve().parents[1] / "examples" / "prd_vicuna80" / "replay-gpt35.jsonl"
    assert main(["rate", str(records), "--format", "json"]) == 0
    board = tmp_path / "board.json"
    board.write_text(capsys.readouterr().out, encoding="utf-8")
    size = check_pair(tmp_path, capsys, "board", str(board), min_marks=10)
    rated = check_pair(tmp_path, capsys, "records", str(records), min_marks=10)
    assert size == rated  # the same 5 models, rated here or by tourney rate
    names = [r["model"] for r in json.loads(board.read_text())["leaderboard"]]
    svg = (tmp_path / "board.svg").read_text(encoding="utf-8")
    assert all(f"<!-- {n} -->" in svg for n in names)  # every model is labelled


def test_accuracy_curves_from_simulate(tmp_path, capsys):
    assert (
        main(
            [
                "simulate",
                "--n",
                "6",
                "--trials",
                "8",
                "--seed",
                "0",
                "--budgets",
                "5,full",
                "--workers",
                "1",
                "--strategies",
                "knockout,round_robin",
                "--format",
                "json",
                "-q",
            ]
        )
        == 0
    )
    report = tmp_path / "sim.json"
    report.write_text(capsys.readouterr().out, encoding="utf-8")
    check_pair(tmp_path, capsys, "acc", str(report), min_marks=10)
    svg = (tmp_path / "acc.svg").read_text(encoding="utf-8")
    assert "<!-- knockout -->" in svg and "<!-- round_robin -->" in svg  # one labelled curve each
    assert main(["plot", str(report), "--metric", "nope", "--out", str(tmp_path / "y.png")]) == 2
    assert "no 'nope' field" in capsys.readouterr().err


def test_bad_extension_and_wrong_kind(example_run, tmp_path, capsys):
    assert main(["plot", str(example_run), "--id", "units", "--out", str(tmp_path / "a.gif")]) == 2
    assert "give a path ending in .png, .svg" in capsys.readouterr().err
    assert (
        main(["plot", str(example_run), "--id", "units", "--kind", "accuracy", "--out", str(tmp_path / "a.png")]) == 2
    )
    assert "does not look like a accuracy input" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_matplotlib_is_imported_only_when_plotting():
    code = (
        "import sys, tourney, tourney.cli, tourney.plotting, tourney.cli.plot, tourney.cli.explain; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_drawing_leaves_the_callers_matplotlib_alone(tmp_path: Path):
    """In a notebook the inline backend must survive a call (switching pyplot to Agg made every
    later figure of the notebook vanish), and no figure stays open in pyplot."""
    code = f"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
from tourney.plotting import plot_accuracy
rows = [{{"strategy": "knockout", "budget": b, "comparisons": c, "top1": t, "ci95": [t - 0.1, t + 0.1]}}
        for b, c, t in [(15, 15, 0.5), (30, 30, 0.6)]]
plot_accuracy({{"rows": rows}}, {str(tmp_path / "a.png")!r})
print(matplotlib.get_backend(), len(plt.get_fignums()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["svg", "0"], out
    assert png_size(tmp_path / "a.png")[0] > 0
