"""Exact resume: a run stopped and continued ends with the weights and metrics of a run that was
never stopped, to the last digit (CPU, trainer.deterministic=true)."""

import json
import signal
from pathlib import Path

import pytest
import torch

from litlab.errors import ConfigError, NonFiniteLossError, TrainingInterrupted
from litlab.train import train
from tests.conftest import compose_quiet

STEPS_PER_EPOCH = 16
# Dropout and augmentation draw random numbers every step, so a resume that lost the
# generators' state, the data order or a metric's partial sums would show in the results.
EXACT = [
    "model=mlp_dropout",
    "model.hidden_sizes=[32]",
    "data.augment=true",
    "data.val_size=100",
    "data.batch_size=32",  # STEPS_PER_EPOCH over 500 training images
    "data.download=false",
    "scheduler=step",
    "scheduler.step_size=1",
    "trainer.deterministic=true",
    "trainer.max_epochs=4",
]


def run_config(data_dir: Path, run_dir: Path, *extra: str):
    return compose_quiet([f"paths.data_dir={data_dir}", *EXACT, *extra], run_dir)


def final_state(run_dir: Path, metrics: dict[str, float]) -> tuple[dict, dict, dict]:
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    results = {k: v for k, v in metrics.items() if not k.startswith("time/")}
    return last["state_dict"], last["optimizer_states"][0]["state"], results


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from tests.conftest import make_tiny_mnist

    root = tmp_path_factory.mktemp("resume")
    data_dir = make_tiny_mnist(root / "data")
    metrics = train(run_config(data_dir, root / "straight"))
    return data_dir, final_state(root / "straight", metrics)


def assert_same(resumed: tuple[dict, dict, dict], straight: tuple[dict, dict, dict]) -> None:
    weights, optimizer, metrics = resumed
    assert weights.keys() == straight[0].keys()
    for name, tensor in weights.items():
        assert torch.equal(tensor, straight[0][name]), name
    for index, state in optimizer.items():
        for key, tensor in state.items():
            assert torch.equal(tensor, straight[1][index][key]), (index, key)
    assert metrics == straight[2]  # exact floats: val/acc_best, test/acc, train/loss, ...


def test_resume_after_epoch_two_matches_an_uninterrupted_run(uninterrupted, tmp_path):
    data_dir, straight = uninterrupted
    run_dir = tmp_path / "run"
    train(run_config(data_dir, run_dir, "trainer.max_epochs=2", "test=false"))
    last = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 32
    metrics = train(run_config(data_dir, run_dir, f"ckpt_path={last}"))
    assert_same(final_state(run_dir, metrics), straight)


@pytest.mark.parametrize(
    ("signal_step", "extra"),
    [
        (40, []),  # mid epoch 3
        # at an epoch's last batch, with step checkpoints that fall on it too: the stop and the
        # save wait for that epoch's validation and end, so the resume does not skip them
        (16, ["callbacks.checkpoint.every_n_train_steps=8"]),
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


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    steps = ["callbacks.checkpoint.every_n_train_steps=4", "data.batch_size=32"]
    cfg = compose_quiet(
        [f"paths.data_dir={tiny_mnist}", "data.val_size=100", "data.download=false", *steps],
        run_dir,
    )
    train(cfg)  # a healthy first run: 3 epochs... then continue it with a blown-up step size
    last = run_dir / "checkpoints" / "last.ckpt"
    good = torch.load(last, weights_only=True)
    for state in good["optimizer_states"][0]["param_groups"]:
        state["lr"] = 1e30
    torch.save(good, last)
    before = last.read_bytes()
    resumed = compose_quiet(
        [
            f"paths.data_dir={tiny_mnist}",
            "data.val_size=100",
            "data.download=false",
            *steps,
            "trainer.max_epochs=20",
            f"ckpt_path={last}",
        ],
        run_dir,
    )
    with pytest.raises(NonFiniteLossError) as diverged:
        train(resumed)
    message = str(diverged.value)
    step = good["global_step"] + 2  # one step makes the weights huge, the next loss overflows
    assert f"at step {step}" in message and "1e+30" in message
    assert "optimizer.lr" in message and "trainer.gradient_clip_val" in message
    assert str(last) in message
    assert diverged.value.exit_code == 3
    assert last.read_bytes() == before  # nothing saved after the fault


def test_ctrl_c_saves_the_step_in_flight_and_exits_130(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=5",
        f"+callbacks.signal.signum={int(signal.SIGINT)}",
    ]
    cfg = run_config(tiny_mnist, run_dir, *probe)
    with pytest.raises(TrainingInterrupted, match="SIGINT received") as stopped:
        train(cfg)
    assert stopped.value.exit_code == 130
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    assert not (run_dir / "metrics.json").exists()  # unfinished: resume=auto may continue it
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_submitits_time_limit_signal_saves_and_stops(tiny_mnist, tmp_path):
    """hydra/launcher=slurm: submitit sends SIGUSR2 signal_delay_s before the time limit."""
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=5",
        f"+callbacks.signal.signum={int(signal.SIGUSR2)}",
    ]
    with pytest.raises(TrainingInterrupted, match="SIGUSR2 received") as stopped:
        train(run_config(tiny_mnist, tmp_path / "run", *probe))
    assert stopped.value.exit_code == 128 + signal.SIGUSR2
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6


def test_gradient_clipping_bounds_the_gradient_norm(tiny_mnist, tmp_path):
    out = tmp_path / "norms.json"
    probe = [
        "+callbacks.norms._target_=tests.probes.GradientNormRecorder",
        f"+callbacks.norms.out_file={out}",
        "trainer.max_epochs=1",
    ]
    train(run_config(tiny_mnist, tmp_path / "clipped", "trainer.gradient_clip_val=0.01", *probe))
    clipped = json.loads(out.read_text())
    train(run_config(tiny_mnist, tmp_path / "free", *probe))
    free = json.loads(out.read_text())
    assert len(clipped) == len(free) == STEPS_PER_EPOCH
    assert max(clipped) <= 0.01 * 1.0001 < min(free)


def test_a_signal_during_the_last_validation_stops_before_testing(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        f"+callbacks.signal.step={STEPS_PER_EPOCH}",
        "+callbacks.signal.in_validation=true",
        "trainer.max_epochs=1",
    ]
    with pytest.raises(TrainingInterrupted, match="SIGTERM received"):
        train(run_config(tiny_mnist, run_dir, *probe))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == STEPS_PER_EPOCH
    assert not (run_dir / "metrics.json").exists()  # not tested: resume=auto will finish it


def test_resume_auto_outside_the_command_line_is_refused(tiny_mnist, tmp_path):
    with pytest.raises(ConfigError, match="ckpt_path=<run>/checkpoints/last.ckpt"):
        train(run_config(tiny_mnist, tmp_path / "run", "resume=auto"))
    assert not (tmp_path / "run").exists()
