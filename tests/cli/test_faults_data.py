"""Fault injection on data folders (issue 11 items 2, 5, 6, 7, 10; issue 10 items 7, 8).

A FIFO, a name that is not UTF-8, a symlink back to the root, an impossible image size,
a moved or swapped folder: each is met through the command line, and the data folder
itself is never written.
"""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from resnetv2.cli import main
from resnetv2.data import load_data, scan_class_folders
from resnetv2.data.stats import ChannelHistogram, compute_mean_std

TINY = ["--depth", "8", "--widths", "4,8,16", "--threads", "1", "--quiet", "--epochs", "1"]


def listing(folder):
    """Names, sizes and modification times of everything below ``folder``."""
    return sorted(
        (os.fsencode(p.relative_to(folder)), p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in folder.rglob("*")
    )


def errors_of(capsys):
    err = capsys.readouterr().err
    return err, [line for line in err.splitlines() if "error:" in line]


def test_train_and_evaluate_never_write_the_data_folder(tmp_path, monkeypatch, capsys, make_folder):
    # Issue 10.7: the cache used to appear as data/.resnetv2-cache.
    monkeypatch.setenv("RESNETV2_CACHE_DIR", str(tmp_path / "cache"))
    data = make_folder(tmp_path / "data")
    before = listing(data)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(data), "--val-split", "0.5", "--out", str(run)]) == 0
    assert main(["evaluate", str(run), "-q", "--device", "cpu"]) == 0
    assert main(["evaluate", str(run), "--data", str(data), "-q", "--device", "cpu"]) == 0
    assert listing(data) == before
    assert list((tmp_path / "cache").glob("images-*.safetensors"))  # the cache is used


def test_relative_data_path_travels_and_a_swapped_folder_is_refused(
    tmp_path, monkeypatch, capsys, make_folder
):
    # Item 2 / issue 10.8: config.yaml said `source: good`; from another directory evaluate
    # and --resume failed, or used another `good/` with the same class names.
    monkeypatch.chdir(tmp_path)
    make_folder(tmp_path / "good")
    args = ["train", *TINY, "--data", "good", "--val-split", "0.5", "--out", "run"]
    assert main(args) == 0
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert f"source: {tmp_path / 'good'}" in config and "fingerprint:" in config
    elsewhere = tmp_path / "elsewhere"
    make_folder(elsewhere / "good", per_class=5, seed=1)  # same class names, other images
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(tmp_path / "run"), "-q", "--device", "cpu"]) == 0
    capsys.readouterr()
    # Now swap the run's folder for the other one: refused, not evaluated or trained on.
    shutil.move(tmp_path / "good", tmp_path / "good.orig")
    shutil.move(elsewhere / "good", tmp_path / "good")
    assert main(["evaluate", str(tmp_path / "run"), "-q", "--device", "cpu"]) == 2
    _, errors = errors_of(capsys)
    assert len(errors) == 1 and "not the one the run used" in errors[0]
    assert "12 image files then and 10 now" in errors[0]
    resume = ["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--quiet"]
    assert main(resume) == 2
    _, errors = errors_of(capsys)
    assert len(errors) == 1 and "--resume-force" in errors[0]
    shutil.rmtree(tmp_path / "good")
    assert main(["evaluate", str(tmp_path / "run"), "-q", "--device", "cpu"]) == 2
    _, errors = errors_of(capsys)
    assert "no longer exists" in errors[0]


@pytest.mark.slow
def test_fifo_in_a_class_folder_is_skipped_not_waited_on(tmp_path, make_folder):
    # Item 5: the size probe opened the FIFO and `train` hung forever.
    data = make_folder(tmp_path / "data")
    os.mkfifo(data / "a" / "p.png")
    result = subprocess.run(
        [sys.executable, "-m", "resnetv2", "train", *TINY, "--data", str(data)]
        + ["--val-split", "0.5", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "a/p.png (not a regular file)" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "resnetv2", "predict", str(tmp_path / "run"), str(data / "a")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "p.png" in result.stderr and "not a regular file" in result.stderr
    assert result.stdout.count("\n") == 1 + 7  # header + 6 images + the FIFO's error row


def test_non_utf8_name_is_skipped_with_a_printable_name(tmp_path, capsys, make_folder):
    # Item 7: one such name aborted the whole dataset with an error naming no file.
    data = make_folder(tmp_path / "data")
    bad = os.path.join(os.fsencode(data / "a"), b"caf\xe9.png")
    shutil.copy(os.fsencode(data / "a" / "0.png"), bad)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(data), "--val-split", "0.5", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert "a/caf\\xe9.png (name is not valid UTF-8" in err
    out = tmp_path / "preds.csv"
    main(["predict", str(run), str(data / "a"), "--out", str(out), "--device", "cpu"])
    text = out.read_bytes().decode("utf-8")  # valid UTF-8 throughout
    rows = list(csv.reader(text.splitlines()))
    (bad_row,) = [r for r in rows if "caf" in r[0]]
    assert bad_row[0].endswith("caf\\xe9.png") and bad_row[1] == "error"


def test_symlink_back_to_the_root_does_not_relabel_another_class(tmp_path, make_folder):
    # Item 10: `a/loop -> ..` indexed class b's images as class a.
    data = make_folder(tmp_path / "data")
    os.symlink("..", data / "a" / "loop")
    os.symlink("../b", data / "a" / "b-again")
    os.symlink("../b/0.png", data / "a" / "stolen.png")
    with pytest.warns(UserWarning, match="symlink") as caught:
        index = scan_class_folders(data)
    names_a = [n for n, label in zip(index.names, index.labels, strict=True) if label == 0]
    assert names_a == [f"a/{i}.png" for i in range(6)]
    assert len(index) == 12
    message = str(caught[0].message)
    assert "a/loop" in message and "a/b-again" in message and "a/stolen.png" in message


def test_link_to_a_class_kept_outside_the_root_is_skipped(tmp_path, make_folder):
    # Class b is itself a link to a folder elsewhere; a/x -> that folder is class b's images.
    elsewhere = make_folder(tmp_path / "elsewhere", classes=("bee",))
    data = make_folder(tmp_path / "data", classes=("a",))
    os.symlink(elsewhere / "bee", data / "b")
    os.symlink(elsewhere / "bee", data / "a" / "x")
    with pytest.warns(UserWarning, match="a/x"):
        index = scan_class_folders(data)
    assert sorted(set(index.labels)) == [0, 1] and len(index) == 12


def test_symlinks_outside_the_dataset_still_work(tmp_path, make_folder):
    outside = make_folder(tmp_path / "outside", classes=("x",))
    data = make_folder(tmp_path / "data")
    os.symlink(outside / "x", data / "a" / "more")
    index = scan_class_folders(data)
    assert sum(1 for n in index.names if n.startswith("a/more/")) == 6


def test_impossible_image_size_is_refused_before_allocating(tmp_path, capsys, make_folder):
    # Item 6: `--image-size 1000000` (now --input-size) tried to allocate petabytes.
    data = make_folder(tmp_path / "data")
    out = tmp_path / "run"
    args = ["train", *TINY, "--data", str(data), "--val-split", "0.5", "--out", str(out)]
    with pytest.raises(SystemExit) as refused:  # refused by the flag's own parser (issue 23, R2)
        main([*args, "--input-size", "1000000"])
    assert refused.value.code == 2
    _, errors = errors_of(capsys)
    assert len(errors) == 1 and "pixels per image" in errors[0]
    assert not out.exists()


def test_streaming_statistics_keep_one_image_at_a_time(tmp_path, monkeypatch, make_folder):
    # Item 6: the streaming path stacked up to 1,000 full-size images for mean/std.
    import resnetv2.data.load as load

    data = make_folder(tmp_path / "data", per_class=8, size=12)
    cached = load_data(data, val_split=0.25, storage="cached", cache=False, progress=False)
    added = []

    class OneAtATime(ChannelHistogram):
        def add(self, images):
            added.append(1 if images.ndim == 3 else images.shape[0])
            super().add(images)

    def no_batch_statistics(*args, **kwargs):
        raise AssertionError("statistics must not need the whole sample in memory")

    monkeypatch.setattr(load, "ChannelHistogram", OneAtATime)
    monkeypatch.setattr(load, "compute_mean_std", no_batch_statistics)
    streamed = load_data(data, val_split=0.25, storage="streaming", progress=False)
    assert streamed.storage == "streaming"
    assert added and max(added) == 1 and len(added) == streamed.num_train
    assert np.allclose(streamed.mean, cached.mean, atol=0.02)
    assert np.allclose(streamed.std, cached.std, atol=0.02)


def test_histogram_statistics_match_the_batch_formula():
    rng = np.random.default_rng(0)
    import torch

    images = torch.from_numpy(rng.integers(0, 256, (5, 3, 7, 9), dtype=np.uint8))
    histogram = ChannelHistogram()
    for image in images:
        histogram.add(image)
    assert histogram.mean_std() == compute_mean_std(images)
