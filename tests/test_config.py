"""litlab.config: every option composes, and bad values fail before anything heavy runs, each
with one message that names the key and a value that works."""

import re

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException

from litlab.config import compose_overrides, flatten, hydra_spelling, validate_config
from litlab.config.checks import RULES, config_errors
from litlab.errors import ConfigError
from tests.helpers import options, own_data_overrides


def test_gpu_trainers_select_gpus(make_config):
    assert make_config("trainer=gpu").trainer.accelerator == "gpu"
    multi = make_config("trainer=multi_gpu").trainer
    assert (multi.accelerator, multi.devices, multi.strategy) == ("gpu", -1, "ddp")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose(make_config, experiment, tmp_path):
    cfg = make_config(f"experiment={experiment}")
    given = own_data_overrides(cfg.data._target_, tmp_path)  # lesson 14: the reader's files
    cfg = make_config(f"experiment={experiment}", *given) if given else cfg
    validate_config(cfg)
    assert cfg.task_name == experiment
    assert cfg.data._target_.startswith("litlab.data.")


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
        ("optimizer=sgd optimizer.momentum=1.5", "optimizer.momentum"),
        ("optimizer.betas=[0.9,1.0]", "optimizer.betas"),
        ("scheduler=step scheduler.step_size=0", "scheduler.step_size"),
        ("scheduler=onecycle scheduler.max_lr=-0.1", "scheduler.max_lr"),
        ("scheduler=plateau scheduler.factor=1.5", "scheduler.factor"),
        ("data=synthetic_regression loss=mse data.num_features=0", "data.num_features"),
        ("data=synthetic_classification data.num_classes=1", "data.num_classes"),
        ("data=synthetic_classification data.noise=-1", "data.noise"),
        ("callbacks.early_stopping.patience=-1", "callbacks.early_stopping.patience"),
        (
            "callbacks.last_checkpoint.every_n_train_steps=0",
            "callbacks.last_checkpoint.every_n_train_steps",
        ),
        # QUIET drops the bar: the override puts it back with the bad rate
        ("++callbacks.progress_bar.refresh_rate=-2", "callbacks.progress_bar.refresh_rate"),
        ("+trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches"),
        ("+trainer.limit_train_batches=1.5", "trainer.limit_train_batches"),
        ("test=maybe", "test"),
        ("model.compile=yes", "model.compile"),
        ("+loss.reduction=none", "loss.reduction"),
        ("logger.tensorboard.name=123", "logger.tensorboard.name"),
        # caught only once training ran before: inf passed "> 0", 0 batches trained nothing
        ("optimizer.lr=inf", "optimizer.lr"),
        ("optimizer.lr=-inf", "optimizer.lr"),
        ("+trainer.limit_train_batches=0", "trainer.limit_train_batches"),
        ("tags=baseline", "tags"),  # one label, not a list
        ("tags=[[a,b]]", "tags"),
        ("tags=['a!']", "tags"),  # MLflow refuses the name
        ("tags=[v2/]", "tags"),  # and this one
        ("tags=[mlflow.runName]", "tags"),  # a tracker's own tag
        ("tags=[true]", "tags"),
        ("notes=[a]", "notes"),
    ],
)
def test_bad_values_name_the_key_and_an_example(make_config, override, key):
    with pytest.raises(ConfigError) as err:
        validate_config(make_config(*override.split()))
    message = str(err.value)
    assert message.startswith(f"{key}=") and "e.g. " in message


@pytest.mark.parametrize(
    ("overrides", "suggestion"),
    [
        (["data=synthetic_regression", "model=mlp", "loss=cross_entropy"], "loss=mse"),
        (["data=mnist", "loss=mse"], "loss=cross_entropy"),
        (["data=synthetic_binary", "model=mlp", "loss=cross_entropy"], "loss=bce_with_logits"),
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
        (["+trainer.limit_val_batches=0"], "callbacks.early_stopping=null"),
    ],
)
def test_settings_that_do_not_work_together(make_config, overrides, text):
    with pytest.raises(ConfigError, match=text.replace(".", r"\.")):
        validate_config(make_config(*overrides))


def test_training_without_validation_is_fine_when_nothing_watches_it(make_config):
    off = ["callbacks.early_stopping=null", "callbacks.best_checkpoint=null"]
    validate_config(make_config("+trainer.limit_val_batches=0", *off))
    on_train_loss = "callbacks.early_stopping.monitor=train/loss"
    validate_config(make_config("+trainer.limit_val_batches=0", on_train_loss, off[1]))
    with pytest.raises(ConfigError, match="scheduler=none"):  # ReduceLROnPlateau watches val/acc
        validate_config(make_config("+trainer.limit_val_batches=0", *off, "scheduler=plateau"))


# The loss that fits each kind of problem, for composing every data option.
FITTING_LOSS = {"multiclass": "cross_entropy", "binary": "bce_with_logits", "regression": "mse"}


@pytest.mark.parametrize("config_name", ["train", "eval"])
def test_every_option_of_every_group_passes_the_checks(make_config, config_name, tmp_path):
    """The shipped configs are inside the domains the rules write down."""
    if config_name == "eval":
        validate_config(make_config("ckpt_path=x.ckpt", config_name="eval"))
        return
    for group in ("data", "optimizer", "scheduler", "trainer", "callbacks", "logger", "debug"):
        for option in options(group):
            overrides = [
                f"{group}={option}",
                *(own_data_overrides(option, tmp_path) if group == "data" else []),
            ]
            if group == "data":
                task = make_config(*overrides).data.task
                overrides += ["model=mlp", f"loss={FITTING_LOSS[task]}"]
            validate_config(make_config(*overrides))


def test_every_rule_names_a_key_and_a_working_example():
    keys = [rule.key for rule in RULES]
    assert len(keys) == len(set(keys))
    parser = OverridesParser.create()
    for rule in RULES:
        if rule.example:  # ckpt_path is a file: no example value
            (override,) = parser.parse_overrides([rule.example])
            assert override.key_or_group == rule.key
            assert rule.domain.accepts(override.value()), rule.example


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        # values that break an interpolation elsewhere (monitor reads data.task)
        (["data.task=foo"], "data.task"),
        (["data=synthetic_classification", "data.num_classes=abc"], "data.num_classes"),
        (["data=synthetic_classification", "data.num_classes=2.5"], "data.num_classes"),
        # num_features and input_shape are computed from seq_len
        (["data=adding", "loss=mse", "data.seq_len=abc"], "data.seq_len"),
        (["data=adding", "loss=mse", "data.seq_len=0"], "data.seq_len"),
        (["data.std=0"], "data.std"),
    ],
)
def test_a_bad_value_that_other_keys_read_is_named_not_a_traceback(make_config, overrides, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        validate_config(make_config(*overrides))


def test_eval_without_a_checkpoint_names_the_missing_key(make_config):
    with pytest.raises(ConfigError) as err:
        validate_config(make_config(config_name="eval"))
    message = str(err.value)
    assert message.startswith("ckpt_path is required") and "checkpoints/best.ckpt" in message


def test_eval_split_must_be_test_or_val(make_config):
    with pytest.raises(ConfigError, match="split='train' is invalid: it must be test or val"):
        validate_config(make_config("ckpt_path=x.ckpt", "split=train", config_name="eval"))


@pytest.mark.parametrize(
    ("overrides", "accepted"),
    [
        (["monitors.multiclass.metric=val/f1"], True),
        (["monitors.multiclass.metric=val/f1/7"], True),  # a per-class metric, by class name
        (["data=xor", "monitors.multiclass.metric=val/recall/1"], True),  # unnamed: indices
        (["monitors.multiclass.metric=val/nope"], False),
        (["monitors.multiclass.metric=val/f1/cat"], False),
        (["data=synthetic_regression", "loss=mse", "monitors.regression.metric=val/acc"], False),
        (["monitors.multiclass.mode=up"], False),
    ],
)
def test_the_monitored_metric_must_be_one_a_run_logs(make_config, overrides, accepted):
    cfg = make_config(*overrides)
    if accepted:
        validate_config(cfg)
        return
    with pytest.raises(ConfigError, match=r"monitor\.(metric|mode)=.*e\.g\. monitors\."):
        validate_config(cfg)


@pytest.mark.parametrize(
    ("override", "closest"),
    [
        ("callbacks.early_stopping.monitor=val/accc", "val/acc"),
        ("callbacks.best_checkpoint.monitor=val/recal", "val/recall"),
    ],
)
def test_a_callback_watching_an_unlogged_metric_is_refused_before_training(
    make_config, override, closest
):
    """Lightning refused it only after the first epoch, with a traceback."""
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key}='.*' is not a metric.* {key}={closest};"):
        validate_config(make_config(override))


def test_a_callback_may_watch_a_training_metric(make_config):
    validate_config(
        make_config("callbacks.best_checkpoint.monitor=train/loss", "callbacks.early_stopping=null")
    )


def test_tune_keys_without_the_finder_are_refused(make_config):
    with pytest.raises(ConfigError, match=r"tune\.only configures .* add tune=lr_find"):
        validate_config(make_config("+tune.only=true"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=iris", "model=rnn"], "model=rnn reads images"),
        (["data=iris", "model=transformer"], "is tabular (data.input_shape is null)"),
        (["data=adding", "model=cnn", "loss=mse"], "data=adding is sequences"),
    ],
)
def test_a_model_that_needs_shaped_data_is_refused_on_other_data(make_config, overrides, message):
    cfg = make_config(*overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(cfg, {"model": overrides[1].split("=")[1], "data": overrides[0][5:]})


@pytest.mark.parametrize("data", ["mnist", "digits", "adding"])
@pytest.mark.parametrize("model", ["rnn", "transformer"])
def test_sequence_and_attention_models_fit_images_and_sequences(make_config, data, model):
    loss = ["loss=mse"] if data == "adding" else []
    validate_config(make_config(f"data={data}", f"model={model}", *loss))


def test_a_missing_folder_is_named_with_every_other_problem(make_config, tmp_path):
    """The folder's facts are read while the parts are checked: its error was raised out of the
    checks, and `litlab check` named it alone."""
    cfg = make_config("data=image_folder", f"data.root={tmp_path / 'nope'}", "optimizer.lr=-1")
    messages = [str(err) for err in config_errors(cfg)]
    assert len(messages) == 2
    assert messages[0].startswith("optimizer.lr=-1 is invalid")
    assert "nope is not a folder (it does not exist)" in messages[1]


def test_tags_and_notes_that_every_tracker_keeps(make_config):
    validate_config(make_config("tags=[baseline,lr study,v2.1,7]", "notes=why this run"))


def test_a_config_flattens_to_dotted_keys():
    nested = {"model": {"hidden_sizes": [64, 32], "act": {"name": "relu"}}, "seed": 1, "x": None}
    assert flatten(nested) == {
        "model.hidden_sizes": "[64, 32]",
        "model.act.name": "relu",
        "seed": "1",
        "x": "None",
    }


def test_a_nested_group_is_chosen_by_its_dotted_key_too():
    assert hydra_spelling(
        [
            "callbacks.weight_averaging=ema",
            "+callbacks.weight_averaging=swa",
            "callbacks.weight_averaging.decay=0.99",
            "callbacks.weight_averaging=null",
            "callbacks.weight_averaging=ema,null",
            "model=cnn",
        ]
    ) == [
        "callbacks/weight_averaging=ema",
        "+callbacks/weight_averaging=swa",
        "callbacks.weight_averaging.decay=0.99",
        "callbacks/weight_averaging=none",
        "callbacks/weight_averaging=ema,none",
        "model=cnn",
    ]


def test_composing_keeps_a_notebooks_own_hydra(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "mine.yaml").write_text("x: 1\n")
    theirs = initialize_config_dir(str(tmp_path), version_base="1.3")
    try:
        before = GlobalHydra.instance().hydra
        assert compose_overrides(["model=cnn"], "train").model._target_ == "litlab.models.CNN"
        assert GlobalHydra.instance().hydra is before
    finally:
        theirs.__exit__(None, None, None)
    assert not GlobalHydra.instance().is_initialized()
