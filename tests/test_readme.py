"""The README's set-up commands are the ones CI and users actually run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    return re.findall(r"^python3 -m venv \.venv && .*$", text, flags=re.M)


def test_ci_runs_the_readme_test_command():
    readme = _commands((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = _commands((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    tests = [c for c in readme if "pytest" in c]
    assert len(tests) == 1, readme
    assert ci == tests


def test_readme_main_job_command_trains_by_default():
    readme = _commands((ROOT / "README.md").read_text(encoding="utf-8"))
    train = [c for c in readme if "pytest" not in c]
    assert len(train) == 1
    assert train[0].endswith(".venv/bin/resnetv2 train")


def _cli_lines() -> list[list[str]]:
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if "resnetv2 " not in line:
            continue
        words = shlex.split(line)
        start = words.index("resnetv2") if "resnetv2" in words else words.index("-m") + 1
        commands.append(words[start + 1 :])
    return commands


def test_every_readme_command_parses():
    from resnetv2.cli import build_parser

    commands = _cli_lines()
    assert len(commands) >= 15
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)  # argparse exits (fails the test) on a bad flag
        assert callable(args.func), argv


def test_readme_inspection_commands_run(tmp_path, capsys):
    from resnetv2.cli import main

    ran = 0
    for argv in _cli_lines():
        if argv[0] in ("depths", "summary"):
            argv = [str(tmp_path / a) if a.endswith(".png") else a for a in argv]
            assert main(argv) == 0, argv
            ran += 1
    assert ran >= 5
    assert (tmp_path / "arch.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert '"params": 25549352' in out  # the resnetv2_50 --json summary
    assert "estimated peak training memory" in out


def _estimate_step(total_steps: int) -> int | None:
    """The step at which ``train`` prints its expected time, for a run of ``total_steps``."""
    from resnetv2.engine.progress import RunTimer

    timer = RunTimer(
        epochs=1, steps_per_epoch=total_steps, start_epoch=0, start_position=0,
        batch_size=1, num_val=1,
    )  # fmt: skip
    for step in range(1, total_steps + 1):
        if timer.step() is not None:
            return step
    return None


def test_readme_says_when_the_time_estimate_prints():
    """ "After 20 steps — or half the run, at least 5 steps, when it has fewer than 40"."""
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    claim = "After 20 steps — or half the run, at least 5 steps, when it has fewer than 40"
    assert claim in text
    assert _estimate_step(100) == 20 and _estimate_step(40) == 20
    assert _estimate_step(30) == 15 and _estimate_step(39) == 19
    assert _estimate_step(8) == 5
