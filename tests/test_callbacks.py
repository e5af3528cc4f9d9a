"""litlab's Lightning callbacks: EpochTimer counts training batches only, GracefulStop saves and
stops on a signal, StopOnNonFiniteLoss ends a diverging run, TrainingDiagnostics measures
gradients and dead units."""

import json
import signal
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image
from torch import nn

from litlab.callbacks import EpochTimer, TrainingDiagnostics
from litlab.data import EpochPermutation, TensorBatchLoader
from litlab.errors import NonFiniteLossError, TrainingInterrupted
from litlab.train import train
from tests.helpers import STEPS_PER_EPOCH, compose_quiet, events, mnist_overrides

CLASSIFICATION = ["data=synthetic_classification", "model=mlp", "trainer.max_epochs=3"]


def tiny_config(data_dir: Path, run_dir: Path, *extra: str):
    """An MLP on tiny MNIST: 16 steps per epoch."""
    overrides = mnist_overrides(data_dir, "model=mlp", "model.hidden_sizes=[32]", *extra)
    return compose_quiet(overrides, run_dir)


class SlowSteps(L.LightningModule):
    """Every training step sleeps 10 ms and every validation step 50 ms."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        time.sleep(0.01)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        time.sleep(0.05)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loader(batches: int) -> TensorBatchLoader:
    data = torch.zeros(batches, 2)
    return TensorBatchLoader((data, data), 1, EpochPermutation(batches, shuffle=False))


def test_validation_time_is_not_training_time():
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        val_check_interval=5,
        num_sanity_val_steps=0,
    )
    trainer.fit(SlowSteps(), loader(20), loader(4))  # 20 x 10 ms training, 4 x 50 ms per val
    assert len(timer.epoch_seconds) == 2
    for seconds in timer.epoch_seconds:  # 0.2 s of training; each epoch validates 4 times
        assert 0.2 <= seconds < 0.2 + 0.15  # 0.8 s of validation would show


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    steps = ["callbacks.last_checkpoint.every_n_train_steps=4", "data.batch_size=32"]
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
    cfg = tiny_config(tiny_mnist, run_dir, *probe)
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
        train(tiny_config(tiny_mnist, tmp_path / "run", *probe))
    assert stopped.value.exit_code == 128 + signal.SIGUSR2
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6


def test_a_signal_during_the_last_validation_stops_before_testing(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        f"+callbacks.signal.step={STEPS_PER_EPOCH}",
        "+callbacks.signal.in_validation=true",
        "trainer.max_epochs=1",
    ]
    with pytest.raises(TrainingInterrupted, match="SIGTERM received"):
        train(tiny_config(tiny_mnist, run_dir, *probe))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == STEPS_PER_EPOCH
    assert not (run_dir / "metrics.json").exists()  # not tested: resume=auto will finish it


def test_dead_relu_fraction_counts_units_silent_for_the_whole_batch():
    diagnostics = TrainingDiagnostics()
    record = diagnostics._recorder("relu", nn.ReLU(), capture=False)
    outputs = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])  # units 0, 3 dead
    record(nn.ReLU(), (outputs,), outputs)
    assert diagnostics._dead["relu"].item() == 0.5
    channels = torch.zeros(3, 4, 5, 5)
    channels[1, 2, 4, 4] = 1.0  # one pixel of one image keeps channel 2 alive
    record(nn.ReLU(), (channels,), channels)
    assert diagnostics._dead["relu"].item() == 0.75


def test_diagnostics_under_gradient_accumulation_log_at_optimizer_steps(make_config):
    cfg = make_config(
        *CLASSIFICATION[:2],
        "trainer.max_epochs=1",
        "+trainer.accumulate_grad_batches=2",
        "callbacks.diagnostics.every_n_steps=10",
    )
    train(cfg)
    accumulator = events(Path(cfg.paths.output_dir))
    norms = [p.step for p in accumulator.Scalars("diagnostics/grad_norm/total")]
    dead = [p.step for p in accumulator.Scalars("diagnostics/dead_relu/layers.2")]
    assert norms == dead == [0, 10, 20, 30]  # 33 optimizer steps of 2 batches each


def test_a_new_test_removes_the_images_of_an_earlier_one(tmp_path):
    """A resumed run that tests without evaluation_images must not link the first run's."""
    from types import SimpleNamespace

    from litlab.callbacks import ReportData

    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("confusion_matrix.png", "top_losses.png", "learning_curves.png"):
        (plots / name).write_bytes(b"old")
    ReportData(tmp_path).on_test_start(SimpleNamespace(is_global_zero=True), None)
    assert [p.name for p in plots.iterdir()] == ["learning_curves.png"]


def test_a_recurrent_run_shows_the_gradient_reaching_each_time_step(make_config):
    cfg = make_config(
        "data=adding",
        "data.seq_len=12",
        "data.num_samples=300",
        "model=rnn",
        "model.cell=rnn",
        "model.hidden_size=8",
        "loss=mse",
        "trainer.max_epochs=2",
    )
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "plots" / "gradient_by_time_step.png").is_file()
    assert "plots/gradient_by_time_step.png" in (run / "report.md").read_text()
    images = events(run).Images("diagnostics/gradient_by_time_step")
    assert [image.step for image in images] == [4, 8]  # after each epoch: 240 samples, batch 64


def test_gradient_by_step_measures_each_step_without_touching_training(make_config):
    from types import SimpleNamespace

    from litlab.build import build_datamodule, build_module
    from litlab.callbacks import SequenceGradients

    cfg = make_config(
        "data=adding", "data.seq_len=6", "data.num_samples=100", "model=rnn", "loss=mse"
    )
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    datamodule.setup("fit")
    trainer = SimpleNamespace(datamodule=datamodule)
    norms = SequenceGradients("unused", samples=16)._gradient_by_step(trainer, module)
    assert len(norms) == 6 and all(norm > 0 for norm in norms)
    assert module.training and all(p.grad is None for p in module.parameters())


def test_gradient_by_step_is_for_recurrent_models_only(make_config, tmp_path):
    from types import SimpleNamespace

    from litlab.build import build_module
    from litlab.callbacks import SequenceGradients

    callback = SequenceGradients(tmp_path / "plots")
    module = build_module(make_config("data=adding", "model=mlp", "loss=mse"))
    callback.on_train_epoch_end(SimpleNamespace(is_global_zero=True), module)
    assert callback.norms == [] and not (tmp_path / "plots").exists()


def test_the_first_batch_is_drawn_as_the_model_sees_it_with_originals_when_augmented(
    tiny_mnist, tmp_path
):
    heights = {}
    for augment in (False, True):
        overrides = mnist_overrides(tiny_mnist, "trainer.max_epochs=1", f"data.augment={augment}")
        cfg = compose_quiet(
            [*overrides, "++callbacks.evaluation_images=null"], tmp_path / str(augment), images=True
        )
        train(cfg)
        folder = Path(cfg.paths.output_dir)
        with Image.open(folder / "plots" / "batch.png") as image:
            heights[augment] = image.size[1]
        (tensorboard_image,) = events(folder).Images("train/batch")
        assert tensorboard_image.step == 0
        assert "plots/batch.png" in (folder / "report.md").read_text()
    assert heights[True] > 1.6 * heights[False]  # 32 originals beside 32 augmented: twice the rows


def test_tabular_data_shows_the_first_batchs_feature_statistics(tmp_path):
    overrides = ["data=wine", "model=mlp", "trainer.max_epochs=1"]
    cfg = compose_quiet([*overrides, "++callbacks.evaluation_images=null"], tmp_path, images=True)
    train(cfg)
    folder = Path(cfg.paths.output_dir)
    batch = json.loads((folder / "report_data.json").read_text())["batch"]
    assert batch["samples"] == 16 and batch["num_features"] == 13  # data.batch_size of wine
    assert batch["features"][0]["name"] == "alcohol"
    assert all(abs(feature["mean"]) < 1.5 for feature in batch["features"])  # standardised
    report = (folder / "report.md").read_text()
    assert "## What the model sees" in report and "| alcohol |" in report
    assert "standardised with the training split's statistics" in report
    assert not (folder / "plots" / "batch.png").exists()
