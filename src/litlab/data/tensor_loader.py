"""Batches of in-memory tensors, served by slicing a permutation.

Written by hand because no library does this: torch's DataLoader fetches samples one by one
(`__getitem__`) and collates them, which costs more than a small model's whole training step.
Here a batch is one indexing operation per tensor.
"""

from collections.abc import Iterator
from math import ceil

import torch


class EpochPermutation:
    """The sample order of one epoch, sharded over distributed processes.

    Shuffled orders depend only on ``(seed, epoch)``, so every process draws the same permutation
    and a resumed run continues with the order it would have had. With ``even_shards`` (training)
    the last ``num_samples % world_size`` samples of each permutation are dropped so that every
    rank takes the same number of steps; without it (evaluation) every sample is kept once and
    ranks may differ by one sample. Lightning calls ``set_epoch`` at the start of each epoch.
    """

    def __init__(
        self,
        num_samples: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        even_shards: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.num_samples, self.shuffle, self.seed = num_samples, shuffle, seed
        self.rank, self.world_size, self.even_shards = rank, world_size, even_shards
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator)
        else:
            order = torch.arange(self.num_samples)
        if self.even_shards:
            order = order[: len(self) * self.world_size]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        if self.even_shards:
            return self.num_samples // self.world_size
        return len(range(self.rank, self.num_samples, self.world_size))


class TensorBatchLoader:
    """Iterates ``(tensor[idx] for tensor in tensors)`` over batches of a sampler's indices.

    Exposes ``sampler`` (and an empty ``batch_sampler``) like a DataLoader, so that Lightning
    inspects it as one and its per-epoch ``set_epoch`` reaches the sampler. ``state_dict`` says
    how far the current epoch has got; Lightning stores it in checkpoints and hands it back to
    ``load_state_dict`` on resume, so a run stopped mid-epoch continues with the next batch it
    would have drawn. (Lightning fetches no batch ahead from loaders that have a length.)
    """

    batch_sampler = None

    def __init__(
        self, tensors: tuple[torch.Tensor, ...], batch_size: int, sampler: EpochPermutation
    ) -> None:
        if any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("all tensors must hold the same number of samples")
        self.tensors, self.batch_size, self.sampler = tensors, batch_size, sampler
        self._batches_served = 0
        self._resume_at: dict[str, int] | None = None

    def __len__(self) -> int:
        return ceil(len(self.sampler) / self.batch_size)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_served": self._batches_served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = state

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        indices = self.sampler.indices().to(self.tensors[0].device)
        batches = indices.split(self.batch_size)
        self._batches_served = self._batches_to_skip()
        for batch in batches[self._batches_served :]:
            self._batches_served += 1
            # index_select, not t[batch]: 6 us instead of 61 us for a batch of 128 MNIST images
            yield tuple(t.index_select(0, batch) for t in self.tensors)

    def _batches_to_skip(self) -> int:
        """Batches already trained on in this epoch, by the run this one resumes."""
        state, self._resume_at = self._resume_at, None
        if state is None or state["epoch"] != self.sampler.epoch:
            return 0  # e.g. a checkpoint from the end of an epoch: the next one starts afresh
        return state["batches_served"] % len(self)
