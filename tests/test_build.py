"""litlab.build: every option builds, and what a constructor refuses becomes a ConfigError that
names the key."""

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import OmegaConf

from litlab.build import (
    NoProfiler,
    build_datamodule,
    build_module,
    build_trainer,
    check_batch_limits,
)
from litlab.config import validate_config
from litlab.errors import ConfigError
from tests.helpers import mnist_overrides, options


@pytest.mark.parametrize("model", options("model"))
def test_every_model_builds_for_mnist(make_config, model):
    cfg = make_config(f"model={model}")
    validate_config(cfg)
    module = build_module(cfg)
    assert module(torch.zeros(4, 1, 28, 28)).shape == (4, 10)


def test_mlp_dropout_has_the_documented_parameter_count(make_config):
    module = build_module(make_config("model=mlp_dropout"))
    assert sum(p.numel() for p in module.net.parameters()) == 109_386
    assert OmegaConf.to_container(make_config("model=mlp_dropout").model.hidden_sizes) == [128, 64]


@pytest.mark.parametrize(
    ("data", "loss", "monitor", "mode"),
    [
        ("synthetic_classification", "cross_entropy", "val/acc", "max"),
        ("synthetic_binary", "bce_with_logits", "val/acc", "max"),
        ("synthetic_regression", "mse", "val/loss", "min"),
        ("xor", "nll", "val/acc", "max"),
    ],
)
def test_tabular_data_sets_set_shapes_and_monitor(make_config, data, loss, monitor, mode):
    cfg = make_config(f"data={data}", f"loss={loss}", "model=mlp")
    validate_config(cfg)
    assert cfg.model.in_features == cfg.data.num_features
    assert cfg.model.out_features == cfg.data.num_outputs
    assert (cfg.monitor.metric, cfg.monitor.mode) == (monitor, mode)
    assert cfg.optimized_metric == f"{monitor}_best"
    assert cfg.callbacks.best_checkpoint.monitor == monitor
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    inputs, _ = datamodule.splits["train"]
    assert inputs.shape[1] == cfg.data.num_features


@pytest.mark.parametrize("optimizer", options("optimizer"))
@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_every_optimizer_and_scheduler_takes_a_step(make_config, optimizer, scheduler):
    cfg = make_config(
        "data=xor",
        "model=mlp",
        "debug=fast",
        "logger=none",
        f"optimizer={optimizer}",
        f"scheduler={scheduler}",
    )
    validate_config(cfg)
    module = build_module(cfg)
    assert module.optimizer_factory.func.__module__.startswith("torch.optim")
    assert (module.scheduler_factory is None) == (scheduler == "none")
    before = [p.detach().clone() for p in module.parameters()]
    datamodule, trainer = build_datamodule(cfg), build_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)  # configure_optimizers and one step for real
    assert any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))
    assert len(trainer.lr_scheduler_configs) == (scheduler != "none")


@pytest.mark.parametrize("trainer", ["default", "cpu"])
@pytest.mark.parametrize("logger", options("logger"))
@pytest.mark.parametrize("callbacks", options("callbacks"))
def test_trainer_logger_and_callbacks_build(make_config, tmp_path, trainer, logger, callbacks):
    overrides = [f"trainer={trainer}", f"logger={logger}", f"callbacks={callbacks}"]
    built = build_trainer(make_config(*overrides, f"paths.log_dir={tmp_path}"))  # mlflow.db
    early_stopping = [cb for cb in built.callbacks if isinstance(cb, EarlyStopping)]
    assert len(early_stopping) == (callbacks == "default")
    assert built.checkpoint_callback is not None  # Lightning's default when ours are off
    assert (built.logger is not None) == (logger != "none")


def test_unexpected_constructor_key_becomes_a_config_error(make_config):
    with pytest.raises(ConfigError, match="model"):
        build_module(make_config("+model.depth=3"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=mlp", "model.dropout=1.5"], "model.dropout=1.5 is invalid: it must be a number"),
        (["model=mlp", "model.hidden_sizes=[64,0]"], "model.hidden_sizes=[64, 0] is invalid"),
        (["model=mlp", "model.activation=swish"], "model.activation='swish' is invalid"),
        (["model=simple_nn", "model.hidden_size=0"], "model.hidden_size=0 is invalid"),
        (["model=cnn", "model.channels=[6,-16]"], "channels[1] must be an integer >= 1, got -16"),
        (["model=mlp", "+model.depth=3"], "model.depth is not a key of litlab.models.MLP"),
    ],
)
def test_a_models_entry_names_the_key_it_refuses_before_anything_is_built(
    make_config, overrides, message
):
    with pytest.raises(ConfigError) as err:
        validate_config(make_config(*overrides))
    assert message in str(err.value)


def test_a_constructors_check_of_several_keys_names_the_key(make_config):
    cfg = make_config("model=cnn", "model.kernel_sizes=[15,15]")
    validate_config(cfg)  # each key alone is fine: together they shrink 28x28 to nothing
    with pytest.raises(ConfigError) as err:
        build_module(cfg)
    assert "model.kernel_sizes=[15, 15] is invalid" in str(err.value)
    assert "--package model" in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "group"),
    [
        (["optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"], "optimizer"),
        (["+optimizer.differentiable=true"], "optimizer"),  # with fused=true
        (["scheduler=step", "+scheduler.last_epoch=5"], "scheduler"),
    ],
)
def test_optimizer_and_scheduler_refusals_come_before_training(make_config, overrides, group):
    """Their constructors run only inside fit(); litlab builds them once up front."""
    with pytest.raises(ConfigError, match=f"Could not build {group}"):
        build_module(make_config(*overrides))


def test_channels_last_stores_convolutions_nhwc_and_checkpoints_load_plain(make_config):
    cfg = make_config("model=cnn", "model.channels_last=true")
    net = build_module(cfg).net
    conv = net.features[3].weight  # the second: one input channel is both layouts at once
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    plain = build_module(make_config("model=cnn")).net
    plain.load_state_dict(net.state_dict())  # the same values, whatever the layout
    images = torch.randn(4, 1, 28, 28)
    assert torch.allclose(plain(images), net(images), atol=1e-5)


def test_lightnings_idle_profiler_is_replaced_unless_one_is_asked_for(make_config):
    trainer = build_trainer(make_config("trainer.max_epochs=1"))
    assert isinstance(trainer.profiler, NoProfiler)
    with trainer.profiler.profile("[Callback]x.on_train_batch_end") as entered:
        assert entered is None
    asked = build_trainer(make_config("+trainer.profiler=simple"))
    assert type(asked.profiler).__name__ == "SimpleProfiler"


def test_a_batch_fraction_that_keeps_no_batch_is_refused_once_the_data_is_read(
    tiny_mnist, make_config
):
    """Tiny MNIST: 100 validation and 200 test samples, one batch of 1000 each."""
    cfg = make_config(*mnist_overrides(tiny_mnist, "+trainer.limit_test_batches=0.5"))
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    with pytest.raises(
        ConfigError, match=r"limit_test_batches=0.5 keeps 0.5 of the test split's 1"
    ):
        check_batch_limits(cfg.trainer, datamodule)
    for fine in ("+trainer.limit_test_batches=1.0", "+trainer.limit_val_batches=1"):
        check_batch_limits(make_config(*mnist_overrides(tiny_mnist, fine)).trainer, datamodule)
