"""The real entry points in subprocesses: a run as a user types it, and bad input.

Every bad input must exit non-zero with one paragraph that names the key or file and the fix,
without a raw traceback, and must leave an existing run folder as it was.
"""

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch

from litlab import PROJECT_ROOT
from tests.helpers import (
    TINY_MNIST,
    error_paragraph,
    folder_digest,
    make_tiny_mnist,
    run_entry_point,
)

TINY = TINY_MNIST


def run(script: str, *args: str, **kwargs):
    return run_entry_point(script, *args, **kwargs)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Tiny MNIST files and one finished run, trained through `python train.py`."""
    root = tmp_path_factory.mktemp("cli")
    data_dir = make_tiny_mnist(root / "data")
    run_dir = root / "good_run"
    # default trainer settings (progress bar, model summary, sanity check), as a user runs it
    result = run(
        "train.py",
        *TINY,
        "model=mlp",
        "model.hidden_sizes=[16]",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
        data_dir=data_dir,
        cwd=root,
        quiet=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root, data_dir, run_dir


def test_train_then_eval_from_the_command_line(workspace):
    root, data_dir, run_dir = workspace
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.5
    assert (run_dir / ".hydra" / "config.yaml").exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert "train.py" in record["command"] and "model.hidden_sizes=[16]" in record["command"]
    for package in ("python", "torch", "lightning", "hydra-core", "torchmetrics"):
        assert record["versions"][package], package
    if (PROJECT_ROOT / ".git").exists():  # a source checkout, as in CI
        assert len(record["git"]["commit"]) == 40 and isinstance(record["git"]["dirty"], bool)
    eval_dir = root / "eval_run"
    result = run(
        "eval.py",
        f"ckpt_path={run_dir}/checkpoints/best.ckpt",
        f"hydra.run.dir={eval_dir}",
        data_dir=data_dir,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads((eval_dir / "metrics.json").read_text())
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-7)


@pytest.fixture(scope="module")
def damaged_data(workspace) -> dict[str, str]:
    """MNIST folders whose training images are cut short, or not IDX (a wrong magic number)."""
    root, data_dir, _ = workspace
    folders = {}
    for name in ("truncated", "bad_magic"):
        folder = root / name
        shutil.copytree(data_dir, folder)
        images = folder / "MNIST" / "raw" / "train-images-idx3-ubyte"
        content = images.read_bytes()
        if name == "truncated":
            images.write_bytes(content[: len(content) // 2])
        else:
            images.write_bytes(b"\x00\x00\x09\x99" + content[4:])
        folders[name] = str(folder)
    return folders


def test_unknown_option_lists_valid_options(workspace):
    root, data_dir, _ = workspace
    result = run("train.py", "model=cnnn", data_dir=data_dir, cwd=root)
    assert result.returncode == 2
    assert "model=cnnn is not an option of model; did you mean model=cnn?" in result.stderr
    assert "simple_nn" in result.stderr and "mlp_dropout" in result.stderr
    assert "Traceback" not in result.stderr and "search path" not in result.stderr


@pytest.mark.parametrize(
    "override, expected",
    [
        ("optimizer.lrr=0.1", "did you mean optimizer.lr?"),  # a typo: the closest key
        ("trainer.max_epoch=1", "did you mean trainer.max_epochs?"),
        ("trainer.nope=1", "The keys under trainer: _target_, default_root_dir"),  # none close
    ],
)
def test_unknown_key_names_the_closest_one(workspace, override, expected):
    root, data_dir, run_dir = workspace
    result = run("train.py", override, data_dir=data_dir, cwd=root)
    key = override.split("=")[0]
    assert result.returncode == 2
    assert f"{key} is not a key of this config" in result.stderr
    assert expected in " ".join(result.stderr.split())
    assert f"+{key}=<value>" in result.stderr  # how to add one of your own, second
    assert "Traceback" not in result.stderr


def slow(*case):
    return pytest.param(*case, marks=pytest.mark.slow)


# Each case is a Python start with torch and Lightning (7 s on 2 cores): one per kind of check
# runs by default (a value rule, two clashes, a batch too large for its split, missing and
# damaged data, a sweep with resume=auto, an unwritable run folder), the rest with the slow
# tests.
BAD_INPUTS = [
    (["optimizer.lr=-1"], ["optimizer.lr=-1", "optimizer.lr=0.001"]),
    slow(["trainer.max_epochs=abc"], ["trainer.max_epochs='abc'", "integer"]),
    slow(["model=mlp", "model.dropout=1.5"], ["model.dropout=1.5", "[0, 1)"]),
    slow(["model=mlp", "model.hidden_sizes=[0]"], ["model.hidden_sizes=[0]"]),
    slow(["data.batch_size=0"], ["data.batch_size=0"]),
    (["data=synthetic_classification", "model=cnn"], ["model=cnn", "data=mnist"]),
    (
        ["data=synthetic_regression", "model=mlp", "loss=cross_entropy"],
        ["loss=cross_entropy", "loss=mse"],
    ),
    (["data=xor", "data.batch_size=5000"], ["data.batch_size=5000", "1400 samples"]),
    (
        ["paths.data_dir=/nonexistent/litlab"],
        ["/nonexistent/litlab/MNIST/raw", "LITLAB_DATA_DIR"],
    ),
    slow(["data.val_size=600"], ["data.val_size=600", "at least one sample"]),
    slow(["trainer.max_epochs=0"], ["trainer.max_epochs=0", "trainer.max_epochs=5"]),
    slow(["seed=abc"], ["seed='abc'", "seed=42"]),
    slow(["trainer.gradient_clip_val=-1"], ["trainer.gradient_clip_val=-1", "=1.0"]),
    slow(["resume=maybe"], ["resume='maybe'", "resume=auto"]),
    slow(
        ["callbacks.last_checkpoint.every_n_train_steps=0"],
        ["callbacks.last_checkpoint.every_n_train_steps=0", "every_n_train_steps=500"],
    ),
    (["hydra.mode=MULTIRUN", "resume=auto"], ["resume=auto", "--multirun", "ckpt_path="]),
    slow(["resume=auto", "ckpt_path=x.ckpt"], ["ckpt_path=x.ckpt", "Leave out resume"]),
    (["hydra.run.dir=/proc/litlab/run"], ["/proc/litlab/run", "hydra.run.dir=<folder>"]),
    (["paths.data_dir={truncated}"], ["{truncated}/MNIST/raw", "could not be parsed"]),
    slow(["paths.data_dir={bad_magic}"], ["{bad_magic}/MNIST/raw", "could not be parsed"]),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUTS)
def test_bad_input_is_one_clear_paragraph(workspace, damaged_data, args, expected):
    root, data_dir, run_dir = workspace
    before, checkout_outputs = folder_digest(run_dir), listing(PROJECT_ROOT / "outputs")
    tiny = TINY if not any(arg.startswith("data=") for arg in args) else []
    args = [arg.format(**damaged_data) for arg in args]
    expected = [text.format(**damaged_data) for text in expected]
    result = run("train.py", *tiny, *args, data_dir=data_dir, cwd=root)
    assert result.returncode == 2
    message = error_paragraph(result)
    for text in expected:
        assert text in message
    assert "Traceback" not in result.stderr
    assert folder_digest(run_dir) == before
    assert listing(PROJECT_ROOT / "outputs") == checkout_outputs  # LITLAB_ROOT, not the checkout


def listing(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.is_dir() else []


def test_training_into_an_existing_run_folder_is_refused(workspace):
    root, data_dir, run_dir = workspace
    before = folder_digest(run_dir / "checkpoints")
    result = run("train.py", *TINY, f"hydra.run.dir={run_dir}", data_dir=data_dir, cwd=root)
    assert result.returncode == 2
    message = error_paragraph(result)
    assert "already holds checkpoints" in message and "ckpt_path=" in message
    assert folder_digest(run_dir / "checkpoints") == before


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def bad_checkpoint(kind: str, folder: Path, good: Path) -> Path:
    path = folder / f"{kind}.ckpt"
    if kind == "garbage":
        path.write_bytes(random.Random(0).randbytes(4096))  # fixed, so the test is repeatable
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "malicious":
        torch.save({"state_dict": {}, "evil": Payload(folder / "pwned")}, path)
    elif kind == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "other_architecture":  # the weights of one model under another's config
        checkpoint = torch.load(good, weights_only=True)
        checkpoint["hyper_parameters"]["run_config"]["model"]["hidden_sizes"] = [32]
        torch.save(checkpoint, path)
    return path


BAD_CHECKPOINTS = [
    ("missing", "does not exist"),
    ("garbage", "could not be read"),
    ("truncated", "could not be read"),
    ("malicious", "was refused: it asks to import posix.system"),
    ("foreign", "not written by litlab"),
    ("other_architecture", "do not fit the model of its own config"),
]


# Each case starts Python with torch (7 s); checkpoint.py's own tests cover every kind in
# process, so the command line runs four of them by default and the rest with the slow tests.
FAST_CHECKPOINT_CASES = {("eval.py", "missing"), ("eval.py", "malicious"), ("train.py", "garbage")}
FAST_CHECKPOINT_CASES |= {("eval.py", "other_architecture")}


@pytest.mark.parametrize(
    ("script", "kind", "expected"),
    [
        pytest.param(
            script,
            kind,
            expected,
            marks=() if (script, kind) in FAST_CHECKPOINT_CASES else pytest.mark.slow,
        )
        for script, cases in (("eval.py", BAD_CHECKPOINTS), ("train.py", BAD_CHECKPOINTS[:4]))
        for kind, expected in cases
    ],
)
def test_bad_checkpoints_are_refused(workspace, tmp_path, script, kind, expected):
    root, data_dir, run_dir = workspace
    before = folder_digest(run_dir)
    checkpoint = bad_checkpoint(kind, tmp_path, run_dir / "checkpoints" / "best.ckpt")
    tiny = TINY if script == "train.py" else []
    result = run(script, *tiny, f"ckpt_path={checkpoint}", data_dir=data_dir, cwd=root)
    assert result.returncode == 2
    message = error_paragraph(result)
    assert expected in message and str(checkpoint) in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pwned").exists()
    assert folder_digest(run_dir) == before


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(workspace, tmp_path):
    root, data_dir, run_dir = workspace
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    last = copy / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    result = run(
        "train.py",
        *TINY,
        "model=mlp",
        "model.hidden_sizes=[16]",
        "trainer.max_epochs=3",
        f"ckpt_path={last}",
        f"hydra.run.dir={copy}",
        data_dir=data_dir,
        cwd=root,
        max_file_bytes=len(before) // 2,  # the run's logs fit; a checkpoint does not
    )
    assert result.returncode == 2
    message = error_paragraph(result)
    assert f"Could not write checkpoint {copy}/checkpoints/" in message
    assert "File too large" in message and "is intact" in message
    assert last.read_bytes() == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.ckpt", "last.ckpt"]


# -- before Hydra makes a folder (litlab.run_start) -------------------------------------------
def test_a_resume_in_a_sweep_is_refused_before_any_job_runs(workspace):
    root, data_dir, _ = workspace
    result = run("train.py", "-m", "resume=auto", *TINY, data_dir=data_dir, cwd=root, quiet=False)
    assert result.returncode == 2
    assert "cannot be combined with --multirun" in error_paragraph(result)
    assert not (root / "outputs" / "train" / "multiruns").exists()


def test_with_hydra_full_error_a_bad_run_folder_still_ends_the_command(workspace):
    root, data_dir, _ = workspace
    full_error = {"HYDRA_FULL_ERROR": "1"}  # Hydra itself would make the error a warning
    args = [*TINY, "hydra.run.dir=/proc/litlab/run"]
    result = run("train.py", *args, data_dir=data_dir, cwd=root, extra_env=full_error)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "/proc/litlab/run cannot be created" in result.stderr


def test_a_check_that_needs_the_data_fails_before_training_and_leaves_no_folder(
    workspace, tmp_path
):
    """Lightning refused the fraction after a whole epoch (MisconfigurationException)."""
    _, data_dir, _ = workspace
    result = run(
        "train.py", *TINY, "+trainer.limit_val_batches=0.5", data_dir=data_dir, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "trainer.limit_val_batches=0.5 keeps 0.5 of the val split's 1 batch(es) (100 " in (
        error_paragraph(result)
    )
    # not its run folder, nor the train/runs/ above it in the log folder
    outputs = tmp_path / "outputs"
    assert not outputs.exists() or not any(outputs.iterdir())
    assert "Traceback" not in result.stderr


def test_a_run_that_fails_after_starting_keeps_its_folder_with_the_reason(workspace, tmp_path):
    root, data_dir, _ = workspace
    run_dir = tmp_path / "run"
    result = run(
        "train.py",
        *TINY,
        "optimizer=sgd",
        "optimizer.lr=1e30",
        f"hydra.run.dir={run_dir}",
        data_dir=data_dir,
        cwd=root,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed"
    assert status["error"].startswith("NonFiniteLossError: ")
