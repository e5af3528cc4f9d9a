"""Reading checkpoints safely: tensors and plain data only, never pickled code."""

import io
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from litlab.errors import CheckpointError
from litlab.run_folder import write_atomically

# torch.save writes a zip archive; a file that starts so but fails to load is cut
# short or corrupt
ZIP_MAGIC = b"PK\x03\x04"


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
    if isinstance(err, PermissionError):
        return CheckpointError(
            f"Checkpoint {path} could not be read: permission denied. Make it readable "
            f"(chmod u+r {path}) or copy it somewhere you can read."
        )
    # torch's own sentences run long (a paragraph on miniz, or advice to pass
    # weights_only=False, i.e. to run whatever the file holds): the file's first bytes say more
    with path.open("rb") as file:
        head = file.read(len(ZIP_MAGIC))
    if not head:
        what = "is empty (0 bytes)"
    elif head == ZIP_MAGIC:
        size = f"{path.stat().st_size:,} bytes"
        what = f"is truncated or damaged (a zip archive of {size} that does not read to its end)"
    else:
        what = "is not a PyTorch checkpoint, or is damaged"
    return CheckpointError(
        f"Checkpoint {path} could not be read: it {what}. An interrupted copy or download, or a "
        "disk that filled up while it was saved, leaves such a file: copy it again from where it "
        "came from, or use another checkpoint of the same run (last.ckpt or best.ckpt)."
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints with the run folder's atomic writer: a temporary file beside the
    target, flushed to disk, renamed over the target.

    Written by hand: Lightning stages checkpoints through fsspec, which writes the temporary file
    to /tmp and moves it; across file systems that move copies into the final path, so a kill or
    a full disk during the copy leaves a truncated checkpoint where a good one was. A rename
    within one folder is atomic: the path holds the old file or the new one, never a mix.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        data = io.BytesIO()
        torch.save(checkpoint, data)  # in memory first: torch hides a failed write's cause
        try:
            write_atomically(path, data.getbuffer())
        except OSError as err:
            raise CheckpointError(
                f"Could not write checkpoint {path} ({err.strerror or err}; "
                f"{len(data.getbuffer()) / 1e6:.1f} MB). Free disk space or write the run "
                f"elsewhere (hydra.run.dir=<folder>). {_what_is_kept(path)}"
            ) from err


def _what_is_kept(path: Path) -> str:
    """Only a checkpoint that exists is offered to resume from."""
    if path.exists():
        return f"The previous {path.name} is intact: resume from it (resume=auto)."
    others = sorted(path.parent.glob("*.ckpt")) if path.parent.is_dir() else []
    if others:
        return f"{path.name} was not saved; {others[0]} is intact: resume from it."
    return "No checkpoint of this run was saved: start it again once there is space."


def rng_states() -> dict[str, Any]:
    """Every random generator's state as tensors and plain data (so ``weights_only`` loads it).

    Written by hand: Lightning's own collector keeps numpy's state as an array, which a
    ``weights_only`` load refuses."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), position, has_gauss, cached_gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached_gauss = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():  # as many GPUs as both runs have
        for device, state in enumerate(states["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, device)
