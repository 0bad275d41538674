"""Fault injection on ``resnetv2 train`` run folders (issue 11, items 1, 3, 8, 11, 12, 14, 16, 17).

Each test injects the fault the way a user meets it, through the command line, and checks
the promise: exit 2 with one line, and a refused command changes nothing in the run folder.
"""

import hashlib
import subprocess
import sys

import pytest

from resnetv2.cli import main
from resnetv2.engine.runfolder import RunLock
from resnetv2.io import CheckpointManager

TINY = ["--depth", "8", "--widths", "4,8,16", "--threads", "1", "--quiet", "--deterministic"]


def snapshot(folder):
    """Every file below ``folder`` with a hash of its bytes (and every folder)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A two-epoch tiny digits run (made once; tests copy it before changing anything)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(run)]) == 0
    return run


@pytest.fixture
def run_copy(finished_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_refused_resume_changes_nothing_in_the_run(run_copy, capsys):
    # Item 1: the refusal used to rewrite config.yaml with the refused batch size.
    before = snapshot(run_copy)
    assert main(["train", "--resume", str(run_copy), "--batch-size", "16", "--quiet"]) == 2
    one_line_error(capsys, "refusing to resume", "batch_size: 64 -> 16")
    assert snapshot(run_copy) == before
    # ... so a plain resume is still accepted (the run is complete: nothing left to train).
    assert main(["train", "--resume", str(run_copy), "--quiet"]) == 0


def test_resume_without_config_yaml_is_refused(run_copy, capsys):
    # Item 3: it used to resume silently with the default recipe's settings.
    (run_copy / "config.yaml").unlink()
    before = snapshot(run_copy)
    assert main(["train", "--resume", str(run_copy), "--quiet"]) == 2
    one_line_error(capsys, "config.yaml is missing", "--config")
    assert snapshot(run_copy) == before


def test_failed_start_leaves_no_folder(tmp_path, capsys):
    # Item 8: `--data /nonexistent --out typo` used to leave a folder nobody could use.
    out = tmp_path / "typo"
    assert main(["train", *TINY, "--data", str(tmp_path / "nope"), "--out", str(out)]) == 2
    one_line_error(capsys, "unknown data source")
    assert not out.exists()


def test_nan_in_the_first_epoch_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "nan"
    args = ["train", *TINY, "--epochs", "1", "--lr", "1e30", "--schedule", "constant"]
    assert main([*args, "--out", str(out)]) == 1
    assert "loss is" in capsys.readouterr().err
    assert not out.exists()


def test_killed_start_is_reused_by_the_next_out(tmp_path, capsys):
    # A start killed by SIGKILL (nothing can clean up) leaves start-up files only.
    out = tmp_path / "killed"
    (out / "checkpoints" / ".tmp-step-000000001").mkdir(parents=True)
    (out / "train.log").write_text("started\n")
    (out / "config.yaml").write_text("name: digits\n")
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    one_line_error(capsys, "before its first checkpoint", f"--out {out}")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file()


def test_out_naming_a_file_or_a_run_says_what_to_do(run_copy, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["train", *TINY, "--out", str(afile)]) == 2
    line = one_line_error(capsys, "is an existing file")
    assert "--resume" not in line
    assert main(["train", *TINY, "--out", str(run_copy)]) == 2
    one_line_error(capsys, "already holds a run", f"--resume {run_copy}")


def test_tampered_training_state_is_refused(run_copy, capsys):
    # Item 16: a state with impossible counters, in a checkpoint whose manifest verifies.
    manager = CheckpointManager(run_copy / "checkpoints")
    latest = manager.load_latest()
    state = dict(latest.train_state)
    state["loader"] = {**state["loader"], "position": 10**12}
    state["global_step"] = 10**15
    manager.save(
        latest.step + 1,
        model_state=latest.model_state,
        train_state=state,
        metadata={k: v for k, v in latest.metadata.items() if k != "step"},
    )
    assert main(["train", "--resume", str(run_copy), "--epochs", "3", "--quiet"]) == 2
    one_line_error(capsys, "inconsistent with this run", "loader position 1000000000000")


def test_second_trainer_on_the_same_run_is_refused(run_copy, capsys):
    # Item 17: the lock is held (as by a running `train --resume`).
    lock = RunLock(run_copy).acquire()
    try:
        before = snapshot(run_copy)
        assert main(["train", "--resume", str(run_copy), "--epochs", "3", "--quiet"]) == 2
        one_line_error(capsys, "in use by another `resnetv2 train`")
        assert snapshot(run_copy) == before
    finally:
        lock.release()


def test_lock_of_a_killed_process_is_not_stale(run_copy):
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(run_copy)!r}, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match="in use"):
            RunLock(run_copy).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunLock(run_copy).acquire().release()  # the kernel dropped the dead holder's lock


def test_impossible_depth_is_refused_before_allocating(tmp_path, capsys):
    # Item 11: the estimate (hundreds of GiB) is compared with the machine's memory.
    out = tmp_path / "deep"
    assert main(["train", "--depth", "99998", "--quiet", "--out", str(out)]) == 2
    one_line_error(capsys, "training needs about", "--checkpoint-activations", "--no-memory-check")
    assert not out.exists()


def test_memory_check_override(tmp_path, monkeypatch, capsys):
    import resnetv2.memory.preflight as preflight

    monkeypatch.setattr(preflight, "available_memory", lambda device: 1024)
    args = ["train", *TINY, "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    one_line_error(capsys, "only 1.00 KiB is available")
    assert main([*args, "--no-memory-check", "--out", str(tmp_path / "b")]) == 0


def exit_code(argv):
    """``main(argv)``'s exit code, also when argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seed", "1180591620717411303424"], "--seed (train.seed) is out of range"),
        (["--seed", "-3"], "--seed (train.seed) must be in 0.."),
        (["--epochs", "1e29"], "invalid int value"),
        (["--amp", "maybe"], "invalid choice"),
    ],
)
def test_bad_flags_are_one_line(tmp_path, capsys, args, needle):
    # Item 12 and the "Also" list: argparse errors used to print the whole usage first.
    assert exit_code(["train", *args, "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, needle)
    assert not (tmp_path / "r").exists()


def test_config_name_cannot_leave_runs(tmp_path, monkeypatch, capsys):
    # Item 14: `name: ../../../x` put the run folder outside runs/.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("name: ../../../escaped\nmodel: {depth: 8}\n")
    assert main(["train", "--config", "c.yaml", "--quiet"]) == 2
    one_line_error(capsys, "one plain folder name")
    assert not any(p.name == "escaped" for p in tmp_path.parent.parent.parent.iterdir())
    assert not (tmp_path / "runs").exists()


def test_checkpoint_warnings_print_no_source_line(run_copy, capsys):
    # A damaged newest checkpoint is skipped with a warning: one line, no code excerpt.
    newest = sorted((run_copy / "checkpoints").glob("step-*"))[-1]
    (newest / "model.safetensors").write_bytes(b"damaged")
    assert main(["train", "--resume", str(run_copy), "--quiet"]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "skipping checkpoint" in line]
    assert warning and "warnings.warn(" not in err and "File " not in err
