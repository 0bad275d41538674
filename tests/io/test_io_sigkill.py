"""SIGKILL at random moments while saving: resuming always finds a valid checkpoint.

Importing torch takes seconds, so instead of starting a fresh interpreter per trial the test
starts one "zygote" process that imports torch once and forks a saver child per trial. Each
child resumes from the newest valid checkpoint (as a restarted training run would) and saves
checkpoints in a tight loop until it is killed with SIGKILL after a seeded random delay.
"""

import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest
import torch

from resnetv2.io import CheckpointManager

TRIALS = 15

ZYGOTE = textwrap.dedent(
    """
    import os
    import sys

    import torch

    from resnetv2.io import CheckpointManager

    run_dir = sys.argv[1]


    def saver(seed):
        manager = CheckpointManager(run_dir, keep_last=2)
        resumed = manager.load_latest()
        step = resumed.step if resumed is not None else 0
        generator = torch.Generator().manual_seed(seed)
        while True:
            step += 1
            # Sizes vary so the kill lands at different offsets inside the files.
            model = {
                "conv.weight": torch.full((16, 64), float(step)),
                "fc.bias": torch.arange(float(step % 97 + 1)),
            }
            state = {
                "step": step,
                "rng": torch.get_rng_state(),
                "optimizer": {0: {"momentum": torch.randn(4000, generator=generator)}},
            }
            manager.save(
                step, model_state=model, train_state=state, metadata={"seed": seed},
                is_best=step % 3 == 0,
            )
            # One write(2) of under PIPE_BUF bytes is atomic: a kill can't leave half a line.
            os.write(1, f"saved {step}\\n".encode())


    while True:
        line = sys.stdin.readline()
        if not line:
            break
        pid = os.fork()
        if pid == 0:
            try:
                saver(int(line))
            finally:
                os._exit(1)
        print(f"pid {pid}", flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
    """
)


def _reader(stream, lines):
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.timeout(120)
def test_sigkill_during_saves_never_loses_the_last_committed_checkpoint(tmp_path):
    script = tmp_path / "zygote.py"
    script.write_text(ZYGOTE)
    run_dir = tmp_path / "run"
    zygote = subprocess.Popen(
        [sys.executable, str(script), str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(zygote.stdout, lines), daemon=True).start()

    def next_line():
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            pytest.fail("the saver process stopped responding")
        if line is None:
            pytest.fail(f"the zygote exited: {zygote.stderr.read()}")
        return line

    manager = CheckpointManager(run_dir, keep_last=2)
    kill_rng = random.Random(20240601)
    last_committed = 0
    interrupted_mid_save = 0
    try:
        for trial in range(TRIALS):
            zygote.stdin.write(f"{trial}\n")
            zygote.stdin.flush()
            line = next_line()
            assert line.startswith("pid "), line
            pid = int(line.split()[1])
            line = next_line()
            assert line.startswith("saved "), (
                f"{line} {zygote.stderr.read() if line == 'reaped' else ''}"
            )
            time.sleep(kill_rng.uniform(0.0, 0.12))
            os.kill(pid, signal.SIGKILL)
            while (line := next_line()) != "reaped":
                last_committed = int(line.split()[1])
            if any(p.name.startswith(".") for p in run_dir.iterdir()):
                interrupted_mid_save += 1

            with warnings.catch_warnings():
                # A committed name must never hold a broken checkpoint, not even once.
                warnings.simplefilter("error")
                info = manager.latest_valid()
                assert info is not None, f"trial {trial}: no valid checkpoint"
                assert info.step >= last_committed, f"trial {trial}: lost step {last_committed}"
                loaded = manager.load(info.step)
            assert loaded.train_state["step"] == info.step
            assert torch.all(loaded.model_state["conv.weight"] == float(info.step))
            last_committed = info.step
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
        zygote.stdout.close()
        zygote.stderr.close()
    # The kills really landed inside saves (hidden leftovers), and the run kept advancing.
    assert interrupted_mid_save >= 1
    assert last_committed > TRIALS
