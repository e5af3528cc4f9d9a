"""Resuming (litlab.resume): which run continues, what a checkpoint must fit, and exact resume.
A run stopped and continued ends with the weights and metrics of a run that was never stopped,
to the last digit (CPU, trainer.deterministic=true), in-process and through `python train.py`
with SIGTERM, SIGKILL and `resume=auto`."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from litlab import PROJECT_ROOT
from litlab.config import compose_config, plain_config
from litlab.errors import ConfigError, TrainingInterrupted
from litlab.resume import (
    apply,
    check_checkpoint_fits,
    find_continuation,
    set_aside_result,
)
from litlab.run_folder import read_history
from litlab.train import train
from tests.helpers import (
    EXACT,
    QUIET,
    STEPS_PER_EPOCH,
    TINY_MNIST,
    assert_same,
    compose_quiet,
    error_paragraph,
    final_state,
    folder_digest,
    make_tiny_mnist,
    mnist_overrides,
    run_entry_point,
)

CLASSIFICATION = ["data=synthetic_classification", "model=mlp", "trainer.max_epochs=3"]
# Long enough to be stopped from outside; resumed runs pass a smaller trainer.max_epochs.
ENDLESS = [*TINY_MNIST, "model=mlp", "model.hidden_sizes=[16]", "callbacks.early_stopping=null"]


def run_config(data_dir: Path, run_dir: Path, *extra: str):
    return compose_quiet([f"paths.data_dir={data_dir}", *EXACT, *extra], run_dir)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data_dir = make_tiny_mnist(root / "data")
    metrics = train(run_config(data_dir, root / "straight"))
    return data_dir, final_state(root / "straight", metrics)


# -- which run continues ---------------------------------------------------------------------
def runs_of(tmp_path: Path, *names: str, finished: tuple[str, ...] = ()) -> Path:
    """outputs/train/runs/<name>/ folders with a last.ckpt (and metrics.json if finished)."""
    runs = tmp_path / "outputs" / "train" / "runs"
    for name in names:
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "checkpoints" / "last.ckpt").write_bytes(b"")
        if name in finished:
            (runs / name / "metrics.json").write_text("{}")
    return runs


def resume_config(tmp_path: Path, mode: str):
    return compose_config([f"paths.log_dir={tmp_path}/outputs", f"resume={mode}"], tmp_path / "new")


def test_the_latest_run_with_a_last_checkpoint_is_continued(tmp_path):
    runs = runs_of(tmp_path, "2026-01-01_10-00-00", "2026-01-02_09-00-00")
    (runs / "2026-01-03_00-00-00").mkdir()  # a later run that saved nothing yet
    continuation = find_continuation(resume_config(tmp_path, "auto"))
    assert continuation.run == runs / "2026-01-02_09-00-00"
    assert continuation.checkpoint == continuation.run / "checkpoints" / "last.ckpt"


def test_a_finished_run_is_continued_only_by_force(tmp_path):
    runs = runs_of(tmp_path, "2026-01-01_10-00-00", finished=("2026-01-01_10-00-00",))
    with pytest.raises(ConfigError, match="has finished.*resume=force"):
        find_continuation(resume_config(tmp_path, "auto"))
    assert find_continuation(resume_config(tmp_path, "force")).run == runs / "2026-01-01_10-00-00"
    set_aside_result(runs / "2026-01-01_10-00-00")  # what a forced resume does first
    assert sorted(p.name for p in (runs / "2026-01-01_10-00-00").iterdir()) == [
        "checkpoints",
        "metrics.1.json",
    ]


def test_without_runs_there_is_nothing_to_continue(tmp_path):
    assert find_continuation(resume_config(tmp_path, "auto")) is None


def test_a_run_folder_hydra_made_before_the_lookup_is_refused(tmp_path):
    """Without litlab's Hydra callback (a conf/hydra of one's own) the run is not looked up
    before Hydra makes a new folder; continuing elsewhere would leave that folder behind."""
    runs = runs_of(tmp_path, "2026-01-01_10-00-00")
    (tmp_path / "new").mkdir()  # what Hydra made
    with pytest.raises(ConfigError, match="did not happen here.*hydra.run.dir="):
        apply(resume_config(tmp_path, "auto"))
    assert find_continuation(resume_config(tmp_path, "auto")).run == runs / "2026-01-01_10-00-00"


def test_resuming_with_another_model_names_the_difference(tiny_mnist, make_config):
    cfg = make_config(*mnist_overrides(tiny_mnist, "model=mlp", "model.hidden_sizes=[32]"))
    train(cfg)
    run = Path(cfg.paths.output_dir)
    before = folder_digest(run)
    other = mnist_overrides(tiny_mnist, "model=mlp", "model.hidden_sizes=[64]")
    with pytest.raises(ConfigError) as refused:
        train(make_config(*other, f"ckpt_path={run}/checkpoints/last.ckpt", run_dir="other"))
    message = str(refused.value)
    assert "model.hidden_sizes" in message and "[32]" in message and "overrides.yaml" in message
    assert folder_digest(run) == before


def test_speed_switches_and_options_newer_than_the_checkpoint_do_not_block_a_resume(make_config):
    digits = ["model=cnn", "data=digits", "model.kernel_sizes=[3,3]", "model.paddings=[1,1]"]
    stored = plain_config(make_config(*digits))
    del stored["model"]["pool_first"], stored["model"]["channels_last"]  # an older checkpoint
    stored["model"]["compile"] = True
    older = {"hyper_parameters": {"run_config": stored}}
    check_checkpoint_fits(make_config(*digits), older)
    with pytest.raises(ConfigError, match="model.pool_first"):  # absent means off: not this
        check_checkpoint_fits(make_config(*digits, "model.pool_first=true"), older)


def test_keys_that_only_set_the_starting_weights_do_not_block_a_resume(make_config):
    for cell in ("lstm", "gru"):
        recurrent = ["experiment=adding", "data.num_samples=100", f"model.cell={cell}"]
        stored = plain_config(make_config(*recurrent))
        del stored["model"]["forget_bias"]  # a checkpoint older than the key
        older = {"hyper_parameters": {"run_config": stored}}
        resumed = make_config(*recurrent)
        check_checkpoint_fits(resumed, older)
        assert resumed.model.forget_bias is None  # as that run's weights started
        check_checkpoint_fits(make_config(*recurrent, "model.forget_bias=null"), older)
        with pytest.raises(ConfigError, match="model.hidden_size"):  # what the network computes
            check_checkpoint_fits(make_config(*recurrent, "model.hidden_size=64"), older)
    mlp = {"hyper_parameters": {"run_config": plain_config(make_config("model=mlp"))}}
    xavier = make_config("model=mlp", "model.init=xavier")
    check_checkpoint_fits(xavier, mlp)
    assert xavier.model.init is None  # the checkpoint's run started from PyTorch's default
    with pytest.raises(ConfigError, match="model._target_"):  # another class: nothing is free
        check_checkpoint_fits(make_config("model=rnn", "data=digits"), mlp)


def test_a_resume_that_changes_channels_last_lays_the_optimizer_state_out_anew(tmp_path):
    data_dir = make_tiny_mnist(tmp_path / "data")
    cnn = [f"paths.data_dir={data_dir}", *TINY_MNIST, "model=cnn", "callbacks.early_stopping=null"]
    run = tmp_path / "run"
    train(compose_quiet([*cnn, "model.channels_last=false", "trainer.max_epochs=1"], run))
    last = run / "checkpoints" / "last.ckpt"
    metrics = train(compose_quiet([*cnn, "trainer.max_epochs=2", f"ckpt_path={last}"], run))
    assert metrics["test/acc"] > 0.5
    checkpoint = torch.load(last, weights_only=True)
    weight = checkpoint["state_dict"]["net.features.3.weight"]  # 6 -> 16 channels, 5x5
    assert weight.is_contiguous(memory_format=torch.channels_last)
    params = checkpoint["optimizer_states"][0]["state"]
    assert any(state["exp_avg"].stride() == weight.stride() for state in params.values())


# -- exact resume ----------------------------------------------------------------------------
def test_resume_after_epoch_two_matches_an_uninterrupted_run(uninterrupted, tmp_path):
    data_dir, straight = uninterrupted
    run_dir = tmp_path / "run"
    train(run_config(data_dir, run_dir, "trainer.max_epochs=2", "test=false"))
    last = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2 * STEPS_PER_EPOCH
    metrics = train(run_config(data_dir, run_dir, f"ckpt_path={last}"))
    assert_same(final_state(run_dir, metrics), straight)
    # the first run's records are kept beside the resumed run's
    assert "max_epochs: 2" in (run_dir / "config.yaml").read_text()
    assert "max_epochs: 4" in (run_dir / "config.1.yaml").read_text()
    assert json.loads((run_dir / "run.1.json").read_text())["resumed_from"] == str(last)


def test_a_recurrent_model_resumes_exactly(tmp_path):
    adding = ["data=adding", "data.seq_len=10", "data.num_samples=400", "loss=mse"]
    rnn = [*adding, "model=rnn", "model.cell=gru", "model.hidden_size=16", "model.num_layers=2"]
    exact = [*rnn, "model.dropout=0.3", "trainer.deterministic=true", "trainer.max_epochs=4"]
    straight = train(compose_quiet(exact, tmp_path / "straight"))
    run = tmp_path / "resumed"
    train(compose_quiet([*exact, "trainer.max_epochs=2", "test=false"], run))
    resumed = train(compose_quiet([*exact, f"ckpt_path={run}/checkpoints/last.ckpt"], run))
    assert_same(final_state(run, resumed), final_state(tmp_path / "straight", straight))


def test_resume_auto_from_python_continues_the_latest_run(uninterrupted, tmp_path):
    data_dir, straight = uninterrupted
    first = tmp_path / "outputs" / "train" / "runs" / "2026-01-01_10-00-00"
    log_dir = f"paths.log_dir={tmp_path}/outputs"
    sigterm = ["+callbacks.signal._target_=tests.probes.SignalAt", "+callbacks.signal.step=40"]
    with pytest.raises(TrainingInterrupted):
        train(run_config(data_dir, first, log_dir, *sigterm))
    metrics = train(run_config(data_dir, tmp_path / "unused", log_dir, "resume=auto"))
    assert_same(final_state(first, metrics), straight)
    assert not (tmp_path / "unused").exists()
    with pytest.raises(ConfigError, match="resume=auto: the latest run .* has finished"):
        train(run_config(data_dir, tmp_path / "unused", log_dir, "resume=auto"))
    last = first / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match="chooses the run folder and checkpoint itself"):
        train(run_config(data_dir, tmp_path / "x", log_dir, "resume=force", f"ckpt_path={last}.x"))


def test_resume_auto_continues_a_stopped_run_with_its_own_config(tmp_path):
    """The run's config, not conf/'s, for what the command leaves out: a run started with
    trainer.max_epochs=2 continues to 2 epochs (conf/ says 10). An override that changes the
    run is refused before anything is written."""
    data_dir = make_tiny_mnist(tmp_path / "data")
    first = tmp_path / "outputs" / "train" / "runs" / "2026-01-01_10-00-00"
    mlp = ["model=mlp", "model.hidden_sizes=[16]", f"paths.log_dir={tmp_path}/outputs"]
    tiny = [f"paths.data_dir={data_dir}", *TINY_MNIST, *mlp]
    stopped_in_epoch_1 = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=20",
    ]
    with pytest.raises(TrainingInterrupted):
        started = [*tiny, "trainer.max_epochs=2", "optimizer.lr=0.002", *stopped_in_epoch_1]
        train(compose_quiet(started, first))
    before = folder_digest(first)
    with pytest.raises(ConfigError, match=r"changes optimizer.lr \(0.002 -> 0.01\)"):
        train(compose_quiet([*tiny, "resume=auto", "optimizer.lr=0.01"], tmp_path / "unused"))
    assert folder_digest(first) == before
    train(compose_quiet([*tiny, "resume=auto"], tmp_path / "unused"))
    history = read_history(first / "history.csv")
    assert [(row["epoch"], row["lr"]) for row in history] == [(0, 0.002), (1, 0.002)]
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize(
    ("signal_step", "extra"),
    [
        (40, []),  # mid epoch 3
        # at an epoch's last batch, with step checkpoints that fall on it too: the stop and the
        # save wait for that epoch's validation and end, so the resume does not skip them
        (16, ["callbacks.last_checkpoint.every_n_train_steps=8"]),
    ],
)
def test_sigterm_then_resume_matches_an_uninterrupted_run(
    uninterrupted, tmp_path, signal_step, extra
):
    data_dir, straight = uninterrupted
    run_dir = tmp_path / "run"
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        f"+callbacks.signal.step={signal_step}",
        *extra,
    ]
    with pytest.raises(TrainingInterrupted, match="SIGTERM received") as stopped:
        train(run_config(data_dir, run_dir, *probe))
    assert stopped.value.exit_code == 143
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    saved = signal_step + 1  # the step in flight was finished, then saved
    assert checkpoint["global_step"] == saved
    assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": saved // STEPS_PER_EPOCH, "batches_served": saved % STEPS_PER_EPOCH}
    ]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back
    metrics = train(run_config(data_dir, run_dir, f"ckpt_path={last}", *extra))
    assert_same(final_state(run_dir, metrics), straight)


def test_resumed_run_keeps_one_history_row_per_epoch(make_config):
    step_lr = ["scheduler=step", "scheduler.step_size=1"]  # halves the rate after every epoch
    sigterm_mid_epoch_1 = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=100",
    ]
    cfg = make_config(*CLASSIFICATION, *step_lr, *sigterm_mid_epoch_1)
    with pytest.raises(TrainingInterrupted):
        train(cfg)
    folder = Path(cfg.paths.output_dir)
    resumed = make_config(*CLASSIFICATION, *step_lr, f"ckpt_path={folder}/checkpoints/last.ckpt")
    train(resumed)
    history = read_history(folder / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert [row["step"] for row in history] == [66, 132, 198]
    assert [row["lr"] for row in history] == [0.001, 0.0005, 0.00025]  # the rate each trained with


def test_a_run_continued_from_an_epochs_end_keeps_that_epochs_row(make_config):
    """last.ckpt saved at the end of epoch 1 holds the rows of epochs 0 and 1: epoch 1's row is
    otherwise written only when epoch 2 starts, which the continued run never repeats."""
    cfg = make_config(*CLASSIFICATION, "trainer.max_epochs=2")
    train(cfg)
    folder = Path(cfg.paths.output_dir)
    (folder / "metrics.json").unlink()  # as if it had stopped after its last checkpoint
    (folder / "history.csv").unlink()
    last = folder / "checkpoints" / "last.ckpt"
    train(make_config(*CLASSIFICATION, "trainer.max_epochs=3", f"ckpt_path={last}"))
    history = read_history(folder / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert all(row["train/loss"] > 0 and row["val/loss"] > 0 for row in history)


# -- through the command line ----------------------------------------------------------------
@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_tiny_mnist(tmp_path / "data")
    return tmp_path


def run(*args: str, root: Path):
    return run_entry_point("train.py", *args, data_dir=root / "data", cwd=root)


def start(root: Path, *args: str) -> subprocess.Popen:
    env_run = ["env", f"LITLAB_DATA_DIR={root / 'data'}", f"LITLAB_ROOT={root}"]
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *QUIET, *ENDLESS, *args]
    return subprocess.Popen(
        [*env_run, *command], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_step(process: subprocess.Popen, last: Path, step: int) -> list[int]:
    """Poll last.ckpt until it holds ``step`` or later; return the steps seen on the way."""
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if last.exists():
            saved = torch.load(last, weights_only=True)["global_step"]  # never half-written
            if not seen or seen[-1] != saved:
                seen.append(saved)
            if saved >= step:
                return seen
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no checkpoint at step {step}: {process.communicate()[1][-2000:]}")


def wait_for_run_dir(process: subprocess.Popen, root: Path, task_name: str) -> Path:
    deadline = time.monotonic() + 180
    while not list((root / "outputs").glob(f"{task_name}/runs/*/checkpoints")):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    return only_run(root, task_name)


def only_run(root: Path, task_name: str) -> Path:
    (run_dir,) = (root / "outputs" / task_name / "runs").iterdir()
    return run_dir


@pytest.mark.slow  # two command starts and a run stopped mid-epoch: 30 s
def test_sigterm_saves_and_resume_auto_continues_in_place(root):
    process = start(root, "task_name=term", "trainer.max_epochs=1000")
    run_dir = wait_for_run_dir(process, root, "term")
    last = run_dir / "checkpoints" / "last.ckpt"
    wait_for_step(process, last, 2 * STEPS_PER_EPOCH)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    message = " ".join(stderr[stderr.index("Stopped: ") :].split())
    assert "SIGTERM received" in message and str(last) in message
    assert "task_name=term trainer.max_epochs=1000 resume=auto" in message
    stopped = torch.load(last, weights_only=True)
    assert not (run_dir / "metrics.json").exists()

    epochs = stopped["epoch"] + 2
    args = [*ENDLESS, "task_name=term", f"trainer.max_epochs={epochs}", "resume=auto"]
    resumed = run(*args, root=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert only_run(root, "term") == run_dir  # continued in place, not in a new folder
    final = torch.load(last, weights_only=True)
    assert final["global_step"] == epochs * STEPS_PER_EPOCH
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] > 0.5
    assert "resume=auto" not in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "resume=auto" in (run_dir / ".hydra.1" / "overrides.yaml").read_text()
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) >= 2  # appended
    record = json.loads((run_dir / "run.1.json").read_text())
    assert record["resumed_from"] == str(last) and "resume=auto" in record["command"]

    again = run(*args, root=root)
    assert again.returncode == 2
    assert "has finished" in error_paragraph(again) and "resume=force" in error_paragraph(again)
    forced = run(
        *[arg for arg in args if arg != "resume=auto"],
        f"trainer.max_epochs={epochs + 1}",
        "resume=force",
        root=root,
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == (epochs + 1) * STEPS_PER_EPOCH


@pytest.mark.slow  # a killed run and its resumption: 15 s
def test_sigkill_loses_at_most_the_steps_since_the_last_checkpoint(root):
    every = ["callbacks.last_checkpoint.every_n_train_steps=5"]
    process = start(root, "task_name=kill", "trainer.max_epochs=1000", *every)
    last = wait_for_run_dir(process, root, "kill") / "checkpoints" / "last.ckpt"
    seen = wait_for_step(process, last, 3 * STEPS_PER_EPOCH)
    process.kill()  # SIGKILL: no handler runs
    process.communicate(timeout=60)
    # saved every 5 steps (and at each epoch's end), so a kill loses at most 5 steps
    assert all(step % 5 == 0 or step % STEPS_PER_EPOCH == 0 for step in seen)
    killed = torch.load(last, weights_only=True)  # intact, even if killed while saving
    assert killed["global_step"] >= 3 * STEPS_PER_EPOCH

    epochs = killed["epoch"] + 2
    args = [*ENDLESS, *every, "task_name=kill", f"trainer.max_epochs={epochs}", "resume=auto"]
    resumed = run(*args, root=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == epochs * STEPS_PER_EPOCH


@pytest.mark.slow  # a stopped run, a refused and a continuing command: 25 s
def test_resume_auto_takes_what_the_command_leaves_out_from_the_stopped_run(root):
    stop = ["+callbacks.signal._target_=tests.probes.SignalAt", "+callbacks.signal.step=20"]
    started = [*ENDLESS, "task_name=own", "trainer.max_epochs=3", "optimizer.lr=0.002", *stop]
    first = run(*started, root=root)
    assert first.returncode == 143, first.stderr[-3000:]
    run_dir = only_run(root, "own")
    before = folder_digest(run_dir)

    refused = run("task_name=own", "optimizer.lr=0.01", "resume=auto", root=root)
    assert refused.returncode == 2
    message = error_paragraph(refused)
    assert f"continues {run_dir} with its own config" in message
    assert "optimizer.lr (0.002 -> 0.01)" in message and "without resume=auto" in message
    assert folder_digest(run_dir) == before  # no .hydra.1, no status.json

    resumed = run("task_name=own", "resume=auto", root=root)  # model, data, epochs: the run's
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = read_history(run_dir / "history.csv")
    assert [(row["epoch"], row["lr"]) for row in history] == [(0, 0.002), (1, 0.002), (2, 0.002)]
    line = " ".join((resumed.stdout + resumed.stderr).split())
    assert f"resume=auto: continuing {run_dir} with its own config" in line
    assert "optimizer.lr=0.002" in line and "trainer.max_epochs=3" in line
    assert "model: mlp" in (run_dir / ".hydra.1" / "hydra.yaml").read_text()  # as it ran
