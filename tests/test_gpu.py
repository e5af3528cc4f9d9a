"""On a CUDA GPU (`pytest -m gpu`, run by scripts/gpu_check.sh; skipped without one): the data
set kept on the device, bf16 mixed precision, a compiled network, the data.on_device memory
check, and exact resume."""

from pathlib import Path

import pytest
import torch

from litlab.build import build_datamodule, build_module, build_trainer
from litlab.errors import ConfigError
from litlab.train import train
from tests.helpers import (
    EXACT,
    assert_same,
    compose_quiet,
    final_state,
    make_tiny_mnist,
    mnist_overrides,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
GPU = ["trainer=gpu"]


def test_data_lives_on_the_gpu_by_default(tiny_mnist, make_config):
    cfg = make_config(*mnist_overrides(tiny_mnist, *GPU, "trainer.max_epochs=1"))
    datamodule, trainer = build_datamodule(cfg), build_trainer(cfg)
    trainer.fit(build_module(cfg), datamodule=datamodule)
    assert datamodule.splits["train"][0].device.type == "cuda"
    assert datamodule.splits["train"][0].dtype == torch.uint8  # scaled per batch, not stored


def test_bf16_mixed_precision_learns_and_keeps_float32_weights(tiny_mnist, make_config):
    cfg = make_config(*mnist_overrides(tiny_mnist, *GPU, "trainer.precision=bf16-mixed"))
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.8
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert {t.dtype for t in last["state_dict"].values() if t.is_floating_point()} == {
        torch.float32
    }


def test_a_compiled_cnn_learns_and_saves_plain_parameter_names(tiny_mnist, make_config):
    cfg = make_config(*mnist_overrides(tiny_mnist, *GPU, "model=cnn", "model.compile=true"))
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.8
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert not any("_orig_mod" in key for key in last["state_dict"])


def test_data_too_large_for_the_free_gpu_memory_names_data_on_device(make_config):
    # 300k x 100 float32 features: 114 MiB, more than half of the 64 MiB left free below
    cfg = make_config(
        "data=synthetic_classification",
        "data.num_samples=300000",
        "data.num_features=100",
        "model=mlp",
        "data.on_device=true",
        *GPU,
    )
    free, _ = torch.cuda.mem_get_info()
    blocker = torch.empty(max(free - 64 * 2**20, 0), dtype=torch.uint8, device="cuda")
    try:
        with pytest.raises(ConfigError, match="data.on_device=false"):
            train(cfg)
    finally:
        del blocker
        torch.cuda.empty_cache()


def test_resume_on_the_gpu_matches_an_uninterrupted_run(tmp_path):
    data_dir = make_tiny_mnist(tmp_path / "data")
    exact = [f"paths.data_dir={data_dir}", *EXACT, *GPU]
    straight = train(compose_quiet(exact, tmp_path / "straight"))
    run = tmp_path / "resumed"
    train(compose_quiet([*exact, "trainer.max_epochs=2", "test=false"], run))
    resumed = train(compose_quiet([*exact, f"ckpt_path={run}/checkpoints/last.ckpt"], run))
    assert_same(final_state(run, resumed), final_state(tmp_path / "straight", straight))
