"""``resnetv2 evaluate RUN`` on run folders built in tmp_path (no training)."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import resnetv2
from resnetv2.cli import main
from resnetv2.loading import save_model

MEAN, STD = [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]


def _make_folder(root, classes, per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _make_run(tmp_path, classes=("a", "b", "c"), config=True):
    data = _make_folder(tmp_path / "data", classes)
    torch.manual_seed(0)
    model = resnetv2.create_model(8, num_classes=len(classes), stem_width=4, widths=[4, 4, 4])
    run = tmp_path / "run"
    run.mkdir()
    prep = {"input_size": [8, 8], "in_channels": 3, "mean": MEAN, "std": STD}
    save_model(model, run / "model.safetensors", class_names=list(classes), preprocessing=prep)
    if config:
        cfg = {"data": {"source": str(data), "val_split": 0.5}, "train": {"seed": 0}}
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run, data, model.eval()


def _expected_on_folder(model, folder, classes):
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((folder / name).glob("*.png")):
            images.append(torch.from_numpy(np.array(Image.open(file))).permute(2, 0, 1))
            labels.append(label)
    x = torch.stack(images).float() / 255
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        pred = model(x).argmax(1)
    labels = torch.tensor(labels)
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(labels.tolist(), pred.tolist()):
        confusion[t, p] += 1
    return (pred == labels).float().mean().item(), confusion


def test_evaluate_run_default_split_writes_three_files(tmp_path, capsys):
    run, _data, _model = _make_run(tmp_path)
    assert main(["evaluate", str(run), "-q"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "macro avg" in out
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    # val_split 0.5 of 4 images per class: 2 per class
    assert metrics["count"] == 6
    assert metrics["class_names"] == ["a", "b", "c"]
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.sum() == 6 and confusion.sum(axis=1).tolist() == [2, 2, 2]
    assert metrics["top1"] == pytest.approx(np.trace(confusion) / 6)
    assert set(metrics["per_class"]) == {"a", "b", "c"}
    assert metrics["split"] == "val"
    report = (run / "eval" / "report.txt").read_text()
    assert "top-1" in report and "precision" in report
    with Image.open(run / "eval" / "confusion_matrix.png") as image:
        assert image.format == "PNG" and min(image.size) > 200


def test_evaluate_on_a_folder_matches_a_manual_forward_pass(tmp_path, capsys):
    run, data, model = _make_run(tmp_path)
    out = tmp_path / "elsewhere"
    assert main(["evaluate", str(run), "--data", str(data), "--out", str(out), "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    top1, confusion = _expected_on_folder(model, data, ["a", "b", "c"])
    assert metrics["count"] == 12  # the whole folder
    assert metrics["top1"] == pytest.approx(top1)
    assert metrics["confusion_matrix"] == confusion.tolist()
    assert (out / "report.txt").is_file() and (out / "confusion_matrix.png").is_file()


def test_class_name_mismatch_is_one_line_exit_2(tmp_path, capsys):
    run, _data, _model = _make_run(tmp_path)
    other = _make_folder(tmp_path / "other", ["a", "b", "d"])
    assert main(["evaluate", str(run), "--data", str(other), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'d'" in err and "'c'" in err and "Traceback" not in err
    assert not (run / "eval").exists()


def test_no_config_needs_data(tmp_path, capsys):
    run, _data, _model = _make_run(tmp_path, config=False)
    assert main(["evaluate", str(run), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--data" in err


def test_builtin_digits(tmp_path, capsys):
    torch.manual_seed(0)
    model = resnetv2.create_model(8, in_channels=1, num_classes=10, stem_width=4, widths=[4, 4, 4])
    prep = {"input_size": [8, 8], "in_channels": 1, "mean": [0.3], "std": [0.4]}
    save_model(
        model, tmp_path / "m.safetensors", class_names=[str(i) for i in range(10)],
        preprocessing=prep,
    )  # fmt: skip
    code = main(["evaluate", str(tmp_path / "m.safetensors"), "--data", "digits", "--json", "-q"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["count"] == 359  # the fixed digits validation split
    assert np.array(metrics["confusion_matrix"]).sum() == 359
    assert (tmp_path / "eval" / "metrics.json").is_file()
