"""The entries of losses: the kind of problem each serves, what it takes from the network's
outputs, and the domains of its keys.

torch's loss classes are not litlab's code, so their entries are written here, once. A loss
class of your own (``loss._target_=my_package.MyLoss``) states the same as class attributes:
``task`` (multiclass, binary or regression) and, unless it takes raw outputs, ``inputs``.
Imports no torch (a loss of your own is imported to read its attributes).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from litlab.config.domains import PROBABILITY, Domain, number_above, one_of
from litlab.config.entries import part_class

# What a loss takes: the network's raw outputs (logits, or regression values), their
# log-softmax, or their probabilities (sigmoid of a binary logit).
LOGITS, LOG_PROBABILITIES, PROBABILITIES = "logits", "log_probabilities", "probabilities"
# The epoch's loss is the mean of per-batch values: a loss per sample would not reduce.
REDUCTION = {"reduction": one_of("mean", "sum")}


@dataclass(frozen=True)
class LossEntry:
    task: str | None  # None: a loss of your own that does not say; not checked
    inputs: str = LOGITS
    domains: Mapping[str, Domain] = field(default_factory=lambda: dict(REDUCTION))
    # what to use instead under mixed precision, for a loss torch refuses inside autocast
    not_in_autocast: str | None = None


TORCH_LOSSES = {
    "torch.nn.CrossEntropyLoss": LossEntry(
        "multiclass", domains={**REDUCTION, "label_smoothing": PROBABILITY}
    ),
    "torch.nn.NLLLoss": LossEntry("multiclass", LOG_PROBABILITIES),
    "torch.nn.BCEWithLogitsLoss": LossEntry("binary"),
    # sigmoid then BCE is unstable in half precision: torch refuses it inside autocast
    "torch.nn.BCELoss": LossEntry("binary", PROBABILITIES, not_in_autocast="loss=bce_with_logits"),
    "torch.nn.MSELoss": LossEntry("regression"),
    "torch.nn.L1Loss": LossEntry("regression"),
    "torch.nn.HuberLoss": LossEntry("regression", domains={**REDUCTION, "delta": number_above(0)}),
}


# The loss a data set gets when neither the command line nor an experiment names one: the usual
# loss of its kind of problem (litlab.config.recommended applies it).
TASK_LOSSES = {"multiclass": "cross_entropy", "binary": "bce_with_logits", "regression": "mse"}


# The losses whose value per sample is what the report measures per test sample (cross-entropy
# of the true class, squared error: litlab.callbacks.top_losses.per_sample_loss): the spread
# of those tells the noise of the validation loss only for these.
PER_SAMPLE_MEASURED = frozenset(
    {
        "torch.nn.CrossEntropyLoss",
        "torch.nn.NLLLoss",
        "torch.nn.BCEWithLogitsLoss",
        "torch.nn.BCELoss",
        "torch.nn.MSELoss",
    }
)


def loss_entry(target: str) -> LossEntry:
    """The entry of the loss class ``target`` names."""
    if target in TORCH_LOSSES:
        return TORCH_LOSSES[target]
    cls = part_class(target, "loss")
    return LossEntry(getattr(cls, "task", None), getattr(cls, "inputs", LOGITS), {})


def loss_options(config_dir: Path) -> dict[str, list[str]]:
    """The loss options in ``config_dir``/loss that fit each kind of problem, by the entry of
    the class each names: what to suggest when a loss does not fit the data."""
    options: dict[str, list[str]] = {}
    for path in sorted((config_dir / "loss").glob("*.yaml")):
        target = (yaml.safe_load(path.read_text()) or {}).get("_target_")
        entry = TORCH_LOSSES.get(target)
        if entry is not None:
            options.setdefault(entry.task, []).append(f"loss={path.stem}")
    return options
