"""TrialPruning (litlab.callbacks.trial_pruning) in a real Lightning fit against a real SQLite
study: it reports after every validation and stops a trial its pruner judges hopeless."""

import lightning as L
import pytest
import torch

optuna = pytest.importorskip("optuna", reason='needs pip install -e ".[optuna]"')

from litlab.callbacks import TrialPruning  # noqa: E402
from litlab.hparams_search.study import PRUNED_EPOCH  # noqa: E402

MEDIAN = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 2}


class ScriptedValues(L.LightningModule):
    """Logs the next of ``values`` as val/acc_best at each validation."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.values = values

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc_best", self.values[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 2)))

    val_dataloader = train_dataloader


def study_with_two_good_trials(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    for _ in range(2):
        trial = study.ask()
        for step, value in enumerate([0.8, 0.9, 0.95], start=1):
            trial.report(value, step)
        study.tell(trial, 0.95)
    return study, url


def fit(url: str, number: int, values: list[float]) -> tuple[L.Trainer, TrialPruning]:
    callback = TrialPruning(url, "s", number, "val/acc_best", pruner=MEDIAN)
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ScriptedValues(values))
    return trainer, callback


def test_a_hopeless_trial_stops_after_its_first_epoch(tmp_path):
    study, url = study_with_two_good_trials(tmp_path)
    bad = study.ask()
    trainer, callback = fit(url, bad.number, [0.3, 0.3, 0.3])
    assert trainer.current_epoch == 1  # one epoch trained
    assert callback.pruned_epoch == 1
    stored = study.trials[bad.number]
    assert stored.intermediate_values == {1: pytest.approx(0.3)}
    assert stored.user_attrs[PRUNED_EPOCH] == 1
    assert callback.stop_explanation().startswith(
        f"Pruned after epoch 1: the median pruner judged trial {bad.number} (val/acc_best 0.3)"
    )


def test_a_promising_trial_reports_every_epoch_and_trains_to_the_end(tmp_path):
    study, url = study_with_two_good_trials(tmp_path)
    good = study.ask()
    trainer, callback = fit(url, good.number, [0.85, 0.92, 0.97])
    assert trainer.current_epoch == 3 and callback.pruned_epoch is None
    assert callback.stop_explanation() is None
    assert study.trials[good.number].intermediate_values == pytest.approx(
        {1: 0.85, 2: 0.92, 3: 0.97}
    )
    assert callback.state_dict() == {"validations": 3, "pruned_epoch": None}
