"""The private parts of Lightning, Hydra, OmegaConf, torch and TensorBoard that litlab relies on,
in one place: each where no public API does the job, with why. tests/test_library_internals.py
fails when a library changes one of them underneath.
"""

from typing import Any

# Lightning sets this attribute on the LightningModule around every hook (~40 times per training
# step); SupervisedModule takes it past nn.Module.__setattr__'s checks, which cost ~0.4 ms per
# step on a small CPU (as much as SimpleNN's forward pass). No public hook says it.
HOOK_NAME_ATTRIBUTE = "_current_fx_name"


def at_last_batch(trainer: Any) -> bool:
    """Whether the training batch just finished was its epoch's last: the epoch's validation and
    end hooks still belong to the same training state. Lightning keeps it in its loops'
    progress tracking only."""
    return bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


def trainer_or_none(module: Any) -> Any:
    """A LightningModule's trainer, or None (``module.trainer`` raises when there is none, e.g.
    under ``load_from_checkpoint``)."""
    return module._trainer


def also_every_epoch(checkpoint: Any) -> None:
    """Make a ModelCheckpoint built with ``every_n_train_steps`` save after every epoch too:
    its constructor refuses both triggers, its saving logic handles both."""
    checkpoint._every_n_epochs = 1


def progress_bar_started(bar: Any) -> bool:
    """Whether Lightning's Rich progress bar has created its training bar (the first batch of
    an epoch must reach it)."""
    return bar.train_progress_bar_id is not None


def job_error(job_return: Any) -> BaseException:
    """The exception a failed Hydra job raised (``JobReturn.return_value`` re-raises it)."""
    return job_return._return_value


def file_writer(summary_writer: Any) -> Any:
    """A torch SummaryWriter's file writer, reopened if Lightning closed it at the end of fit:
    the only way to append events (the HPARAMS session) to the same event file."""
    return summary_writer._get_file_writer()


def unscales_in_step(optimizer: Any) -> bool:
    """Whether a torch optimizer unscales mixed-precision gradients inside its own step (fused
    Adam): its gradients then still carry the loss scale when Lightning's hooks see them."""
    return getattr(optimizer, "_step_supports_amp_scaling", False)


def is_missing(node: Any) -> bool:
    """OmegaConf: a value left at ``???``, without resolving interpolations on the way."""
    return node._is_missing()


def is_interpolation(node: Any) -> bool:
    """OmegaConf: a value that is an interpolation (``${...}``), read without resolving it."""
    return node._is_interpolation()


def child_node(config: Any, key: str) -> Any:
    """OmegaConf: the node under ``key`` itself, not its (resolved) value."""
    return config._get_node(key)


def drop_wandb_anonymous(logger: Any) -> None:
    """Lightning's WandbLogger always passes ``anonymous`` to ``wandb.init`` (None when unset),
    and W&B prints that the setting has no effect at every run; only its stored init arguments
    can leave it out."""
    logger._wandb_init.pop("anonymous", None)
