"""Reading checkpoints safely: tensors and plain data only, never pickled code."""

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from litlab.errors import CheckpointError


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a litlab checkpoint with ``weights_only=True`` on the CPU.

    Raises :class:`CheckpointError` for a missing, unreadable, unsafe or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Pass ckpt_path=<run folder>/checkpoints/best.ckpt "
            "(or last.ckpt); run folders are under outputs/<task_name>/runs/."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch words it "Unsupported global: GLOBAL x.y" or "unsupported GLOBAL x.y whose ..."
        unsafe = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", str(err), re.IGNORECASE)
        if unsafe is None:  # not a refusal: the bytes are no valid pickle at all
            raise _unreadable(path, err) from err
        raise CheckpointError(
            f"Checkpoint {path} was refused: it asks to import {unsafe.group(1)}, and loading "
            "it would run code. litlab loads only tensors and plain data from checkpoints; use "
            "a checkpoint written by litlab, or re-save the weights as a plain state_dict from "
            "a source you trust."
        ) from err
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for damaged files
        raise _unreadable(path, err) from err
    if not isinstance(checkpoint, dict) or "run_config" not in checkpoint.get(
        "hyper_parameters", {}
    ):
        raise CheckpointError(
            f"Checkpoint {path} was not written by litlab: it lacks the run config "
            "(hyper_parameters.run_config) needed to rebuild its model and data."
        )
    return checkpoint


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    details = str(err).splitlines()[0][:200] if str(err) else "no details"
    return CheckpointError(
        f"Checkpoint {path} could not be read ({type(err).__name__}: {details}). The file is "
        "truncated or not a PyTorch checkpoint; use another one, e.g. last.ckpt or best.ckpt of "
        "the same run."
    )
