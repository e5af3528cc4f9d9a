"""Every config option composes and builds; bad values fail before anything heavy runs."""

import pytest
import torch
from hydra.errors import ConfigCompositionException
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import OmegaConf

from litlab import CONFIG_DIR
from litlab.build import build_datamodule, build_task, build_trainer
from litlab.config import validate_config
from litlab.errors import ConfigError

TABULAR = ["data=synthetic_classification", "model=mlp"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def test_groups_offer_the_documented_options():
    assert options("model") == ["cnn", "mlp", "mlp_dropout", "perceptron", "simple_nn"]
    assert options("data") == [
        "mnist",
        "synthetic_binary",
        "synthetic_classification",
        "synthetic_regression",
        "xor",
    ]
    assert options("loss") == [
        "bce",
        "bce_with_logits",
        "cross_entropy",
        "huber",
        "mae",
        "mse",
        "nll",
    ]
    assert options("optimizer") == ["adam", "adamw", "rmsprop", "sgd"]
    assert options("scheduler") == ["cosine", "none", "onecycle", "plateau", "step"]
    assert options("trainer") == ["cpu", "ddp_cpu", "default", "gpu", "multi_gpu"]
    assert options("logger") == ["csv", "none", "tensorboard"]
    assert options("callbacks") == ["default", "none"]
    assert {"mnist_simple_nn", "mnist_cnn"} <= set(options("experiment"))
    assert options("debug") == ["fast", "overfit"]


@pytest.mark.parametrize("model", options("model"))
def test_every_model_builds_for_mnist(make_config, model):
    cfg = make_config(f"model={model}")
    validate_config(cfg)
    task = build_task(cfg)
    assert task(torch.zeros(4, 1, 28, 28)).shape == (4, 10)


def test_mlp_dropout_has_the_documented_parameter_count(make_config):
    task = build_task(make_config("model=mlp_dropout"))
    assert sum(p.numel() for p in task.net.parameters()) == 109_386
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
    task = build_task(cfg)
    assert task.optimizer_factory.func.__module__.startswith("torch.optim")
    assert (task.scheduler_factory is None) == (scheduler == "none")
    before = [p.detach().clone() for p in task.parameters()]
    datamodule, trainer = build_datamodule(cfg), build_trainer(cfg)
    trainer.fit(task, datamodule=datamodule)  # configure_optimizers and one step for real
    assert any(not torch.equal(b, p) for b, p in zip(before, task.parameters(), strict=True))
    assert len(trainer.lr_scheduler_configs) == (scheduler != "none")


@pytest.mark.parametrize("trainer", ["default", "cpu"])
@pytest.mark.parametrize("logger", options("logger"))
@pytest.mark.parametrize("callbacks", options("callbacks"))
def test_trainer_logger_and_callbacks_build(make_config, trainer, logger, callbacks):
    built = build_trainer(
        make_config(f"trainer={trainer}", f"logger={logger}", f"callbacks={callbacks}")
    )
    early_stopping = [cb for cb in built.callbacks if isinstance(cb, EarlyStopping)]
    assert len(early_stopping) == (callbacks == "default")
    assert built.checkpoint_callback is not None  # Lightning's default when ours are off
    assert (built.logger is not None) == (logger != "none")


def test_gpu_trainers_select_gpus(make_config):
    assert make_config("trainer=gpu").trainer.accelerator == "gpu"
    multi = make_config("trainer=multi_gpu").trainer
    assert (multi.accelerator, multi.devices, multi.strategy) == ("gpu", -1, "ddp")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose(make_config, experiment):
    cfg = make_config(f"experiment={experiment}")
    validate_config(cfg)
    assert cfg.task_name == experiment
    assert cfg.data._target_.endswith("MNISTDataModule")


def test_debug_presets(make_config):
    assert make_config("debug=fast").trainer.fast_dev_run is True
    overfit = make_config("debug=overfit")
    assert overfit.trainer.overfit_batches == 3 and overfit.callbacks.early_stopping is None


def test_data_dir_follows_the_environment(make_config, monkeypatch, tmp_path):
    monkeypatch.setenv("LITLAB_DATA_DIR", str(tmp_path / "elsewhere"))
    assert make_config().paths.data_dir == str(tmp_path / "elsewhere")
    monkeypatch.delenv("LITLAB_DATA_DIR")
    assert make_config().paths.data_dir.endswith("/data")


def test_unknown_option_lists_the_valid_ones(make_config):
    with pytest.raises(ConfigCompositionException) as err:
        make_config("model=nope")
    assert "Available options in 'model'" in str(err.value)
    assert "simple_nn" in str(err.value) and "mlp_dropout" in str(err.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lr=-1", "optimizer.lr"),
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.lr=fast", "optimizer.lr"),
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.batch_size=1.5", "data.batch_size"),
        ("data.val_size=-3", "data.val_size"),
        ("data.val_size=1.0", "data.val_size"),
        ("seed=abc", "seed"),
        ("loss.label_smoothing=1.2", "loss.label_smoothing"),
        ("data.augment=maybe", "data.augment"),
        ("data.max_shift=-1", "data.max_shift"),
        ("data.on_device=sometimes", "data.on_device"),
    ],
)
def test_bad_values_name_the_key_and_an_example(make_config, override, key):
    with pytest.raises(ConfigError) as err:
        validate_config(make_config(override))
    message = str(err.value)
    assert message.startswith(f"{key}=") and "e.g. " in message


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["model=mlp", "model.dropout=1.5"], "model.dropout"),
        (["model=mlp", "model.hidden_sizes=[64,0]"], "model.hidden_sizes"),
        (["model=simple_nn", "model.hidden_size=0"], "model.hidden_size"),
        (["model=cnn", "model.channels=[6,-16]"], "model.channels"),
        (["optimizer=sgd", "optimizer.momentum=1.5"], "optimizer.momentum"),
        (["scheduler=onecycle", "scheduler.max_lr=-0.1"], "scheduler.max_lr"),
    ],
)
def test_bad_model_and_optimizer_values(make_config, overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(make_config(*overrides))


@pytest.mark.parametrize(
    ("overrides", "suggestion"),
    [
        (["data=synthetic_regression", "model=mlp"], "loss=mse"),
        (["data=mnist", "loss=mse"], "loss=cross_entropy"),
        (["data=synthetic_binary", "model=mlp"], "loss=bce_with_logits"),
        (["data=synthetic_classification", "model=mlp", "loss=bce"], "loss=cross_entropy"),
    ],
)
def test_loss_that_does_not_fit_the_task(make_config, overrides, suggestion):
    with pytest.raises(ConfigError) as err:
        validate_config(make_config(*overrides), make_config(*overrides).hydra.runtime.choices)
    assert suggestion in str(err.value) and "data.task" in str(err.value)


def test_cnn_on_tabular_data_is_refused(make_config):
    cfg = make_config("data=synthetic_classification", "model=cnn")
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, {"model": "cnn", "data": "synthetic_classification"})
    message = str(err.value)
    assert "model=cnn" in message and "data.input_shape" in message and "model=mlp" in message


def test_unexpected_constructor_key_becomes_a_config_error(make_config):
    with pytest.raises(ConfigError, match="model"):
        build_task(make_config("+model.depth=3"))


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        (["scheduler=onecycle", "trainer.max_epochs=-1"], "trainer.max_epochs=-1"),
        (["scheduler=cosine", "trainer.max_epochs=-1"], "trainer.max_epochs=-1"),
        (
            ["data=synthetic_binary", "model=mlp", "loss=bce", "trainer.precision=bf16-mixed"],
            "loss=bce_with_logits",
        ),
        (["trainer.precision=16-mixed", "trainer.gradient_clip_val=1.0"], "optimizer.fused=false"),
    ],
)
def test_settings_that_do_not_work_together(make_config, overrides, text):
    with pytest.raises(ConfigError, match=text.replace(".", r"\.")):
        validate_config(make_config(*overrides))
