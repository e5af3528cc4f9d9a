"""litlab.library_internals: each private attribute of Lightning, Hydra, OmegaConf, torch and
TensorBoard that litlab uses still exists and means what litlab assumes. A failure here names
the library change to adapt to."""

import dataclasses

import lightning as L
import pytest
import torch
from hydra.core.utils import JobReturn, JobStatus
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import WandbLogger
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from litlab.callbacks import LastCheckpoint
from litlab.library_internals import (
    HOOK_NAME_ATTRIBUTE,
    at_last_batch,
    child_node,
    drop_wandb_anonymous,
    file_writer,
    is_interpolation,
    is_missing,
    job_error,
    progress_bar_started,
    trainer_or_none,
    unscales_in_step,
)


class Recorder(L.Callback):
    def __init__(self) -> None:
        self.last_batch: list[bool] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.last_batch.append(at_last_batch(trainer))


class HookNames(BoringModel):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(getattr(self, HOOK_NAME_ATTRIBUTE))
        return super().training_step(batch, batch_idx)


def fit(tmp_path, model: L.LightningModule, *callbacks: L.Callback, **trainer) -> L.Trainer:
    run = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=bool(callbacks),
        callbacks=list(callbacks),
        **trainer,
    )
    run.fit(model)
    return run


def test_lightning_names_the_running_hook_in_the_attribute_litlab_takes_a_fast_path_for(tmp_path):
    model = HookNames()
    fit(tmp_path, model)
    assert model.seen == ["training_step"] * 3


def test_the_loops_say_which_training_batch_was_an_epochs_last(tmp_path):
    recorder = Recorder()
    fit(tmp_path, BoringModel(), recorder)
    assert recorder.last_batch == [False, False, True]


def test_a_module_without_a_trainer_has_none(tmp_path):
    model = BoringModel()
    assert trainer_or_none(model) is None
    trainer = fit(tmp_path, model)
    assert trainer_or_none(model) is trainer


def test_a_step_triggered_last_checkpoint_also_saves_at_each_epochs_end(tmp_path):
    fit(tmp_path, BoringModel(), LastCheckpoint(tmp_path / "run", every_n_train_steps=1000))
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()  # 3 steps, < 1000


def test_the_rich_progress_bar_has_no_training_bar_before_training():
    assert not progress_bar_started(RichProgressBar())


def test_a_failed_hydra_job_keeps_its_exception_in_the_field_litlab_reads():
    assert "_return_value" in {field.name for field in dataclasses.fields(JobReturn)}
    error = ValueError("bad")
    job = JobReturn(status=JobStatus.FAILED, _return_value=error)
    assert job_error(job) is error
    with pytest.raises(ValueError):
        _ = job.return_value  # the public property raises it: why litlab reads the field


def test_a_summary_writer_reopens_its_file_writer(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    writer.close()
    file_writer(writer).add_summary(torch.utils.tensorboard.summary.scalar("x", 1.0))
    writer.close()
    assert list(tmp_path.glob("events.*"))


def test_fused_adam_unscales_mixed_precision_gradients_in_its_own_step():
    parameter = [torch.nn.Parameter(torch.zeros(1))]
    assert unscales_in_step(torch.optim.Adam(parameter, fused=True))
    assert not unscales_in_step(torch.optim.SGD(parameter, lr=0.1))


def test_omegaconf_tells_missing_values_and_interpolations_without_resolving_them():
    config = OmegaConf.create({"a": "???", "b": "${nowhere}", "c": 1})
    assert is_missing(child_node(config, "a")) and not is_missing(child_node(config, "c"))
    assert is_interpolation(child_node(config, "b")) and not is_interpolation(
        child_node(config, "c")
    )


def test_lightnings_wandb_logger_keeps_wandbs_init_arguments_where_litlab_drops_one(tmp_path):
    logger = WandbLogger(save_dir=tmp_path, offline=True)
    assert "anonymous" in logger._wandb_init
    drop_wandb_anonymous(logger)
    assert "anonymous" not in logger._wandb_init and logger._wandb_init["dir"] == str(tmp_path)
