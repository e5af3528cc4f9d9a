"""`--help` of each entry point as a user runs it: the command's own keys and groups, not every
group of conf/ (Hydra's default help), and no traceback when the reader stops early."""

import fcntl
import subprocess
import sys

import pytest

from litlab import PROJECT_ROOT

# Options of training's groups, which eval, predict and export take from the checkpoint.
TRAINING_OPTIONS = ("simple_nn", "mlp_dropout", "adamw", "cross_entropy", "fashion_mnist")


def help_text(script: str) -> str:
    result = subprocess.run(
        [sys.executable, script, "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "script, own",
    [
        ("eval.py", ["ckpt_path", "split", "trainer", "callbacks", "python eval.py ckpt_path="]),
        (
            "predict.py",
            ["ckpt_path", "inputs", "top_k", "preprocess", "trainer", "python predict.py"],
        ),
        ("export.py", ["ckpt_path", "format", "verify", "tolerance", "python export.py"]),
    ],
)
def test_help_of_a_command_on_a_checkpoint_names_its_own_keys_only(script, own):
    text = help_text(script)
    assert text.startswith(f"{script}: ")  # what the command does, first
    for word in own:
        assert word in text, word
    for option in TRAINING_OPTIONS:
        assert option not in text, option
    assert "powered by Hydra" not in text


def test_help_of_train_lists_every_group_with_its_options():
    text = help_text("train.py")
    assert text.startswith("train.py: ")
    assert "model: cnn, mlp, mlp_dropout" in text and "optimizer: adam, adamw" in text
    assert "litlab ls" in text and "docs/" in text


def test_help_into_a_reader_that_stops_early_ends_quietly():
    """`python train.py --help | head -1`. The pipe is shrunk to one page and the first line read
    byte by byte, so that the rest of the help (5 kB) cannot fit and its write meets the closed
    pipe; with Linux's default 64 kB pipe the whole help would be written before the close."""
    set_pipe_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_pipe_size is None:
        pytest.skip("resizing a pipe needs Linux")
    process = subprocess.Popen(
        [sys.executable, "train.py", "--help"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # raw reads: only the first line leaves the pipe
    )
    fcntl.fcntl(process.stdout.fileno(), set_pipe_size, 4096)
    line = b""
    while not line.endswith(b"\n"):
        line += process.stdout.read(1) or b"\n"
    assert line.startswith(b"train.py: ")
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert process.returncode == 0
