"""``resnetv2 train --depth 8,14`` sweeps and ``resnetv2 compare`` on the runs they leave."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest
import yaml

from resnetv2.cli import main

ROW_KEYS = {
    "run",
    "depth",
    "block",
    "units",
    "params",
    "flops",
    "best_val_acc",
    "final_val_acc",
    "epochs",
    "train_seconds",
    "images_per_second",
    "precision",
    "train_pflop",
    "val_count",
}


@pytest.fixture(scope="module")
def sweep_and_output(tmp_path_factory):
    """A finished two-depth sweep on the default digits data (one epoch each) and what
    the command printed."""
    parent = tmp_path_factory.mktemp("sweep") / "digits-depths"
    argv = ["train", "--depth", "8,14", "--epochs", "1", "--threads", "1", "--quiet"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--out", str(parent)])
    assert code == 0
    return parent, out.getvalue()


@pytest.fixture
def sweep(sweep_and_output):
    return sweep_and_output[0]


def test_depth_list_ends_with_a_two_row_comparison(sweep_and_output):
    parent, out = sweep_and_output
    table = out[out.index("best acc") :].splitlines()
    rows = [line for line in table if line.startswith("digits-depths/depth-")]
    assert len(rows) == 2
    assert {row.split()[1] for row in rows} == {"8", "14"}
    assert f"sweep folder: {parent}" in out


def test_depth_list_trains_one_run_per_depth_with_one_recipe(sweep):
    assert sorted(p.name for p in sweep.iterdir()) == ["depth-14", "depth-8"]
    for run in sweep.iterdir():
        assert (run / "results.json").is_file() and (run / "model.safetensors").is_file()
    # same recipe and seed for every depth: only the architecture differs
    configs = [
        yaml.safe_load((sweep / d / "config.yaml").read_text()) for d in ("depth-8", "depth-14")
    ]
    assert [c["model"].pop("depth") for c in configs] == [8, 14]
    assert configs[0] == configs[1]


def test_compare_json_has_one_row_per_run_sorted_by_accuracy(sweep, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(sweep / "depth-8" / "spec.json", unfinished / "spec.json")
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    capsys.readouterr()
    code = main(
        ["compare", str(sweep / "depth-8"), str(sweep / "depth-14")]
        + [str(unfinished), str(not_a_run), "--json"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["runs"]
    assert len(rows) == 2 and all(set(r) == ROW_KEYS for r in rows)
    accs = [r["best_val_acc"] for r in rows]
    assert accs == sorted(accs, reverse=True)
    by_depth = {r["depth"]: r for r in rows}
    assert by_depth[8]["block"] == "basic" and by_depth[8]["units"] == [1, 1, 1]
    assert by_depth[14]["units"] == [2, 2, 2]
    assert (
        by_depth[14]["params"] > by_depth[8]["params"]
        and by_depth[14]["flops"] > by_depth[8]["flops"]
    )
    results = json.loads((sweep / "depth-8" / "results.json").read_text())
    assert by_depth[8]["best_val_acc"] == results["val_acc"]
    assert by_depth[8]["epochs"] == 1 and by_depth[8]["precision"] == results["precision"]
    assert by_depth[8]["images_per_second"] > 0 and by_depth[8]["train_seconds"] > 0
    assert by_depth[8]["train_pflop"] == results["train_pflop"] > 0
    assert by_depth[14]["train_pflop"] > by_depth[8]["train_pflop"]  # same images, more FLOPs
    reasons = {u["run"]: u["reason"] for u in data["unreadable"]}
    assert "unfinished" in reasons[str(unfinished)] and "spec.json" in reasons[str(not_a_run)]


def test_compare_a_sweep_folder_as_a_table_and_plot(sweep, tmp_path, capsys):
    plot = tmp_path / "cmp.png"
    assert main(["compare", str(sweep), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "best acc" in out and "depth-8" in out and "depth-14" in out and "PFLOP" in out
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # Three panels (params, time, training compute) of 5 inches each at 150 dpi.
    assert int.from_bytes(data[16:20], "big") == 15 * 150


def test_compare_plots_two_panels_for_runs_without_train_pflop(sweep, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(sweep / "depth-8", old)
    results = json.loads((old / "results.json").read_text())
    del results["train_pflop"]  # a run from before training compute was recorded
    (old / "results.json").write_text(json.dumps(results))
    plot = tmp_path / "old.png"
    assert main(["compare", str(old), "--plot", str(plot)]) == 0
    assert int.from_bytes(plot.read_bytes()[16:20], "big") == 10 * 150


def test_compare_mistakes_exit_2_with_one_line(tmp_path, sweep, capsys):
    assert main(["compare", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no finished run" in err and "no such folder" in err and len(err.splitlines()) == 1
    assert main(["compare", str(sweep), "--plot", str(tmp_path / "x.bmp")]) == 2
    assert ".png" in capsys.readouterr().err


def test_depth_list_mistakes(tmp_path, capsys):
    assert main(["train", "--depth", "8,7", "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "depth 7" in err and not (tmp_path / "s").exists()  # checked before any training
    with pytest.raises(SystemExit) as exc:
        main(["train", "--depth", "8,8"])
    assert exc.value.code == 2
    assert main(["train", "--depth", "8,14", "--resume", str(tmp_path)]) == 2
    assert "single --depth" in capsys.readouterr().err
