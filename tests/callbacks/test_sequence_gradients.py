"""SequenceGradients: the gradient reaching each time step of a recurrent model's input."""

from pathlib import Path
from types import SimpleNamespace

from litlab.build import build_datamodule, build_module
from litlab.callbacks import SequenceGradients
from litlab.train import train
from tests.helpers import events


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
    assert [image.step for image in images] == [8, 16]  # after each epoch: 240 samples, batch 32


def test_gradient_by_step_measures_each_step_without_touching_training(make_config):
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
    callback = SequenceGradients(tmp_path)
    module = build_module(make_config("data=adding", "model=mlp", "loss=mse"))
    callback.on_train_epoch_end(SimpleNamespace(is_global_zero=True), module)
    assert callback.norms == [] and not (tmp_path / "plots").exists()
