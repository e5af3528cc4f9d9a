"""ProgressBar: Lightning's Rich bar, fed only when it redraws, showing the same."""

import io
import itertools

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger

from litlab.callbacks import ProgressBar, progress_bar


def bar_into(output: io.StringIO, refresh_rate: int) -> ProgressBar:
    """The bar, drawing into ``output`` as into a terminal 120 columns wide."""
    console = {"file": output, "force_terminal": True, "width": 120}
    return ProgressBar(refresh_rate=refresh_rate, console_kwargs=console)


def fit(bar: ProgressBar, tmp_path) -> None:
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=40,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[bar],
    )
    trainer.fit(BoringModel())


def test_the_bar_is_fed_at_its_first_batch_its_last_and_when_a_redraw_is_due(tmp_path, monkeypatch):
    calls = []
    original = RichProgressBar.on_train_batch_end
    monkeypatch.setattr(
        RichProgressBar,
        "on_train_batch_end",
        lambda self, *args: (calls.append(args[-1]), original(self, *args))[1],
    )
    monkeypatch.setattr(progress_bar.time, "monotonic", lambda: 100.0)  # the clock stands still
    fit(bar_into(io.StringIO(), refresh_rate=1), tmp_path)
    assert calls == [0, 39]
    calls.clear()
    seconds = itertools.count(100)  # a second passes between any two looks at the clock
    monkeypatch.setattr(progress_bar.time, "monotonic", lambda: next(seconds))
    fit(bar_into(io.StringIO(), refresh_rate=1), tmp_path / "every")
    assert calls == list(range(40))


def test_the_bar_draws_the_epoch_and_its_steps(tmp_path):
    output = io.StringIO()
    fit(bar_into(output, refresh_rate=10), tmp_path)
    drawn = output.getvalue()
    assert "Epoch 0/0" in drawn and "40/40" in drawn


def test_the_bar_shows_no_tracker_version(tmp_path):
    """Lightning shows the first logger's version as v_num: an MLflow run id's tail."""
    output = io.StringIO()
    bar = bar_into(output, refresh_rate=10)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=CSVLogger(tmp_path, version="abcd1234"),
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[bar],
    )
    trainer.fit(BoringModel())
    assert "v_num" not in bar.get_metrics(trainer, trainer.lightning_module)
    assert "v_num" not in output.getvalue() and "1234" not in output.getvalue()
