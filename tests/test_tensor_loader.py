"""EpochPermutation and TensorBatchLoader: epochs, seeded orders, sharding, Lightning's hooks."""

import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch

from litlab.data import EpochPermutation, TensorBatchLoader


def make_loader(
    num_samples: int, batch_size: int, shuffle: bool = True, seed: int = 0
) -> TensorBatchLoader:
    inputs = torch.arange(num_samples, dtype=torch.float32).unsqueeze(1).repeat(1, 3)
    targets = torch.arange(num_samples)
    return TensorBatchLoader(
        (inputs, targets), batch_size, EpochPermutation(num_samples, shuffle=shuffle, seed=seed)
    )


@pytest.mark.parametrize("shuffle", [True, False])
def test_one_epoch_yields_every_sample_once(shuffle):
    loader = make_loader(103, batch_size=10, shuffle=shuffle)
    batches = list(loader)
    assert len(loader) == len(batches) == 11
    assert [len(b[1]) for b in batches] == [10] * 10 + [3]
    seen = torch.cat([targets for _, targets in batches])
    assert sorted(seen.tolist()) == list(range(103))
    for inputs, targets in batches:
        # Inputs and targets are indexed together.
        assert torch.equal(inputs[:, 0].long(), targets)
        assert inputs.shape == (len(targets), 3)


def test_exact_multiple_has_no_partial_batch():
    loader = make_loader(40, batch_size=8)
    assert len(loader) == 5
    assert [len(b[1]) for b in loader] == [8] * 5


def order(seed: int, epoch: int, num_samples: int = 50, shuffle: bool = True) -> list[int]:
    sampler = EpochPermutation(num_samples, shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    return sampler.indices().tolist()


def test_shuffled_order_depends_only_on_seed_and_epoch():
    assert order(seed=3, epoch=2) == order(seed=3, epoch=2)
    assert sorted(order(seed=3, epoch=2)) == list(range(50))
    assert order(seed=3, epoch=0) != order(seed=3, epoch=1)
    assert order(seed=3, epoch=0) != order(seed=4, epoch=0)
    assert order(seed=3, epoch=0) != list(range(50))


def test_loader_order_changes_with_set_epoch_and_repeats_without():
    loader = make_loader(64, batch_size=16, seed=1)
    first = torch.cat([t for _, t in loader]).tolist()
    assert torch.cat([t for _, t in loader]).tolist() == first
    loader.sampler.set_epoch(1)
    assert torch.cat([t for _, t in loader]).tolist() != first


def test_unshuffled_order_is_arange():
    for epoch in (0, 5):
        assert order(seed=7, epoch=epoch, shuffle=False) == list(range(50))


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("num_samples", [101, 1000 + 1])
def test_training_shards_are_disjoint_equal_and_drop_the_remainder(world_size, num_samples):
    assert num_samples % world_size != 0
    for epoch in (0, 1):
        shards = []
        for rank in range(world_size):
            sampler = EpochPermutation(
                num_samples, shuffle=True, seed=5, rank=rank, world_size=world_size
            )
            sampler.set_epoch(epoch)
            shard = sampler.indices().tolist()
            assert len(shard) == len(sampler)
            shards.append(shard)
        assert len({len(s) for s in shards}) == 1
        assert shards[0] and len(shards[0]) == num_samples // world_size
        for i in range(world_size):
            for j in range(i + 1, world_size):
                assert not set(shards[i]) & set(shards[j])
        union = set().union(*shards)
        assert len(union) == num_samples - num_samples % world_size
        assert union <= set(range(num_samples))


@pytest.mark.parametrize("world_size", [2, 3])
def test_evaluation_shards_cover_every_sample_once(world_size):
    num_samples = 100 if world_size == 3 else 101
    assert num_samples % world_size != 0
    shards = []
    for rank in range(world_size):
        sampler = EpochPermutation(
            num_samples, shuffle=False, rank=rank, world_size=world_size, even_shards=False
        )
        shard = sampler.indices().tolist()
        assert len(shard) == len(sampler)
        shards.append(shard)
    everything = [i for shard in shards for i in shard]
    assert sorted(everything) == list(range(num_samples))
    assert max(map(len, shards)) - min(map(len, shards)) == 1


def test_sharded_loader_length_matches_its_batches():
    tensors = (torch.arange(101), torch.arange(101))
    for rank in range(3):
        sampler = EpochPermutation(101, shuffle=False, rank=rank, world_size=3, even_shards=False)
        loader = TensorBatchLoader(tensors, 10, sampler)
        batches = list(loader)
        assert len(loader) == len(batches)
        assert sum(len(b[0]) for b in batches) == len(sampler)


@pytest.mark.parametrize(("rank", "world_size"), [(2, 2), (-1, 2), (0, 0)])
def test_invalid_rank_raises(rank, world_size):
    with pytest.raises(ValueError, match="rank"):
        EpochPermutation(10, shuffle=True, rank=rank, world_size=world_size)


def test_lightning_reaches_the_sampler():
    loader = make_loader(20, batch_size=4)
    assert loader.batch_sampler is None
    assert callable(loader.sampler.set_epoch)
    assert loader.sampler.epoch == 0
    _set_sampler_epoch(loader, 3)
    assert loader.sampler.epoch == 3
    sampler = EpochPermutation(20, shuffle=True)
    sampler.set_epoch(3)
    assert torch.cat([t for _, t in loader]).tolist() == sampler.indices().tolist()


def test_tensors_of_different_lengths_raise():
    with pytest.raises(ValueError, match="same number of samples"):
        TensorBatchLoader((torch.zeros(10, 2), torch.zeros(9)), 4, EpochPermutation(10, False))
