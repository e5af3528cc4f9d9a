"""A part's recommended settings: applied unless the command line or an experiment sets them;
the data set's beat the model's; the loss follows data.task."""

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict, read_write

from litlab.config import apply_recommendations, config_errors
from litlab.config.catalog import shipped_options
from litlab.config.parts import compatible_pairs
from litlab.config.recommended import RECOMMENDED
from litlab.errors import ConfigError
from tests.helpers import own_data_overrides, run_entry_point

ABSENT = object()


def choice(cfg, group: str) -> str:
    return cfg.hydra.runtime.choices[group]


def test_a_small_table_alone_gets_its_epochs_and_the_command_line_wins(make_config):
    assert make_config("data=iris", "model=mlp").trainer.max_epochs == 100
    assert make_config("data=iris", "model=mlp", "trainer.max_epochs=7").trainer.max_epochs == 7
    # typed equal to the option's own default, it still wins
    assert make_config("data=iris", "model=mlp", "trainer.max_epochs=10").trainer.max_epochs == 10
    assert make_config("model=mlp").trainer.max_epochs == 10  # mnist states none


def test_a_model_brings_its_optimizer_and_schedule(make_config):
    cfg = make_config("model=transformer")
    assert choice(cfg, "optimizer") == "adamw" and cfg.optimizer.weight_decay == 0.05
    assert choice(cfg, "scheduler") == "onecycle" and cfg.scheduler.max_lr == 0.003
    assert cfg.trainer.max_epochs == 5 and cfg.model.patch_size == 7  # 16 patches of 28x28
    assert make_config("data=digits", "model=transformer").model.patch_size == 2  # of 8x8


def test_a_chosen_optimizer_drops_the_models_settings_inside_it(make_config):
    cfg = make_config("model=transformer", "optimizer=sgd")
    assert choice(cfg, "optimizer") == "sgd" and cfg.optimizer._target_ == "torch.optim.SGD"
    assert cfg.optimizer.weight_decay == 0.0  # sgd's own, not AdamW's 0.05
    assert choice(cfg, "scheduler") == "onecycle"  # the other recommendations stay
    # a group chosen without a recommended option keeps the keys recommended inside it
    adding = make_config("data=adding", "model=rnn", "optimizer=sgd", "trainer=cpu")
    assert adding.optimizer.lr == 0.01 and adding.trainer.max_epochs == 20


def test_the_data_sets_settings_beat_the_models(make_config):
    cfg = make_config("data=adding", "model=rnn")
    assert cfg.trainer.max_epochs == 20  # the adding problem's, not the RNN's 3
    assert choice(cfg, "scheduler") == "none"  # not the RNN's one-cycle
    assert cfg.optimizer.lr == 0.01 and cfg.trainer.gradient_clip_val == 1.0
    assert choice(cfg, "loss") == "mse" and cfg.loss._target_ == "torch.nn.MSELoss"


def test_an_experiment_beats_the_parts(make_config):
    # spam recommends lr 0.02, the perceptron 0.01; lesson 1's experiment sets 0.05
    assert make_config("experiment=lesson_perceptron").optimizer.lr == 0.05
    assert make_config("data=spam", "model=perceptron").optimizer.lr == 0.02  # data beats model
    lesson = make_config("experiment=lesson_overfitting")  # its early stopping's patience
    assert lesson.callbacks.early_stopping.patience == 20


def test_the_users_keys_inside_a_recommended_option_are_kept(make_config):
    cfg = make_config("model=transformer", "optimizer.betas=[0.8,0.9]", "~optimizer.fused")
    assert choice(cfg, "optimizer") == "adamw" and list(cfg.optimizer.betas) == [0.8, 0.9]
    assert "fused" not in cfg.optimizer and cfg.optimizer.weight_decay == 0.05
    tuned = make_config("model=transformer", "optimizer.weight_decay=0.1")
    assert tuned.optimizer.weight_decay == 0.1
    added = make_config("model=rnn", "+scheduler.three_phase=true")
    assert added.scheduler.three_phase is True and added.scheduler.max_lr == 0.005


def test_a_passed_over_option_drops_only_its_own_parts_keys(make_config):
    """model=transformer's AdamW is passed over for SGD: its weight decay goes, the adding
    problem's learning rate stays."""
    cfg = make_config("data=adding", "model=transformer", "optimizer=sgd")
    assert cfg.optimizer.lr == 0.01 and cfg.optimizer.weight_decay == 0.0


def test_a_config_without_hydras_record_is_the_users_in_every_key(make_config):
    cfg = make_config("data=diabetes", "model=mlp", "loss=huber")
    plain = OmegaConf.create(OmegaConf.to_container(cfg))
    del plain["hydra"]
    plain.data[RECOMMENDED] = {"trainer.max_epochs": 3}
    HydraConfig.instance().cfg = None  # as a config loaded in a fresh process
    assert apply_recommendations(plain) == []
    assert plain.loss._target_ == "torch.nn.HuberLoss" and plain.trainer.max_epochs == 60
    assert RECOMMENDED not in plain.data


@pytest.mark.parametrize(
    ("data", "loss"),
    [("diabetes", "mse"), ("breast_cancer", "bce_with_logits"), ("wine", "cross_entropy")],
)
def test_the_loss_follows_the_task_unless_one_is_chosen(make_config, data, loss):
    cfg = make_config(f"data={data}", "model=mlp")
    assert choice(cfg, "loss") == loss and not config_errors(cfg, dict(cfg.hydra.runtime.choices))
    assert choice(make_config(f"data={data}", "model=mlp", "loss=huber"), "loss") == "huber"


def test_a_key_the_model_lacks_is_left_out(make_config):
    cnn = make_config("data=digits", "model=cnn")
    assert list(cnn.model.kernel_sizes) == [3, 3] and list(cnn.model.paddings) == [1, 1]
    assert "kernel_sizes" not in make_config("data=digits", "model=mlp").model


def test_applying_twice_changes_nothing_and_no_recommended_node_is_left(make_config):
    cfg = make_config("data=adding", "model=rnn")
    before = OmegaConf.to_yaml(cfg)
    assert apply_recommendations(cfg) == []
    assert OmegaConf.to_yaml(cfg) == before
    assert RECOMMENDED not in cfg.data and RECOMMENDED not in cfg.model


def test_what_was_applied_is_logged_in_one_line(make_config, caplog):
    caplog.set_level("INFO", logger="litlab.config.recommended")
    make_config("data=iris", "model=mlp")
    (line,) = [r.getMessage() for r in caplog.records if "Recommended" in r.getMessage()]
    assert line.endswith("trainer.max_epochs=100 (data=iris)")


def test_every_recommended_key_exists_for_some_pair_it_serves(make_config, tmp_path):
    """A typo in an option's `recommended` would be left out silently: each key must exist in
    the config of at least one compatible pair of its part."""
    pairs = compatible_pairs()
    composed = {}

    def config_of(pair):
        if pair not in composed:
            composed[pair] = make_config(f"data={pair[0]}", f"model={pair[1]}")
        return composed[pair]

    for group, side in (("data", 0), ("model", 1)):
        for option, node in shipped_options(group).items():
            served = [pair for pair in pairs if pair[side] == option]
            if group == "data" and not served:  # a user's folder or table: given an example
                composed[(option, "mlp")] = make_config(
                    f"data={option}", "model=mlp", *own_data_overrides(option, tmp_path)
                )
                served = [(option, "mlp")]
            for key in node.get(RECOMMENDED) or {}:
                if "." not in key:
                    assert key in ("loss", "optimizer", "scheduler"), key
                    assert node[RECOMMENDED][key] in shipped_options(key), (option, key)
                    continue
                found = any(
                    OmegaConf.select(config_of(pair), key, default=ABSENT) is not ABSENT
                    for pair in served
                )
                assert found, f"{group}={option} recommends {key}, which no pair has"


def _training_config(cfg) -> dict:
    """What trains: the config without the run's names, folders and Hydra's record."""
    values = {key: cfg[key] for key in cfg if key not in ("hydra", "task_name")}
    return {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in values.items()
    }


# Issue 27's commands, which fell short of their recipe at the defaults of the time
@pytest.mark.parametrize(
    ("command", "recipe"),
    [
        (["model=transformer", "trainer.max_epochs=5"], "mnist_transformer"),
        (["model=rnn", "model.cell=lstm", "trainer.max_epochs=3"], "mnist_lstm"),
        (["data=adding", "model=rnn", "model.cell=lstm", "loss=mse"], "adding"),
    ],
)
def test_a_data_set_and_a_model_alone_train_as_their_recipe(make_config, command, recipe):
    typed = _training_config(make_config(*command))
    assert typed == _training_config(make_config(f"experiment={recipe}"))


def test_a_later_call_keeps_a_stopped_runs_own_choices(make_config):
    """resume=auto gives the config the stopped run's choices after the command's
    recommendations were applied: the run's own call must not take them for defaults."""
    cfg = make_config("data=diabetes", "model=mlp")
    assert choice(cfg, "loss") == "mse"
    stopped_run = make_config("data=diabetes", "model=mlp", "loss=huber", run_dir="stopped")
    with open_dict(cfg), read_write(cfg.hydra), open_dict(cfg.hydra):  # as resume takes them
        cfg.loss = stopped_run.loss
        cfg.hydra.runtime.choices.loss = "huber"
    assert apply_recommendations(cfg) == []
    assert cfg.loss._target_ == "torch.nn.HuberLoss"


@pytest.mark.slow
def test_resume_auto_continues_with_the_stopped_runs_loss(tmp_path):
    stop = ["+callbacks.signal._target_=tests.probes.SignalAt", "+callbacks.signal.step=8"]
    given = ["data=diabetes", "model=mlp", "task_name=huber", "trainer.max_epochs=3"]
    first = run_entry_point(
        "train.py", *given, "loss=huber", *stop, data_dir=tmp_path, cwd=tmp_path
    )
    assert first.returncode == 143, first.stderr
    resumed = run_entry_point("train.py", *given, "resume=auto", data_dir=tmp_path, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    (run,) = (tmp_path / "outputs" / "huber" / "runs").iterdir()
    for record in ("config.yaml", "config.1.yaml"):
        assert OmegaConf.load(run / record).loss._target_ == "torch.nn.HuberLoss"


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        (["model=transformer"], "scheduler=onecycle scheduler.max_lr=<value>"),
        (["model=rnn", "scheduler=onecycle", "scheduler.max_lr=0.01"], "scheduler.max_lr=<value>"),
    ],
)
def test_an_optimizer_rate_that_a_one_cycle_schedule_would_ignore_is_refused(
    make_config, overrides, fix
):
    with pytest.raises(ConfigError, match=r"optimizer.lr=0.01 would be ignored") as refused:
        make_config(*overrides, "optimizer.lr=0.01")
    assert f"Give the peak rate as {fix} instead" in str(refused.value)
    # with a schedule that keeps the optimizer's rate, or one of its own, it is used
    kept = make_config("model=transformer", "scheduler=none", "optimizer.lr=0.01")
    assert kept.optimizer.lr == 0.01 and not kept.scheduler  # none: an empty node
    peak = make_config("model=transformer", "scheduler=onecycle", "scheduler.max_lr=0.01")
    assert peak.scheduler.max_lr == 0.01


def test_only_a_rate_typed_on_the_command_line_is_refused(make_config):
    # mnist_simple_nn's own rate, under the RNN's one-cycle schedule: the recipe's, not typed
    cfg = make_config("experiment=mnist_simple_nn", "model=rnn")
    assert cfg.scheduler.max_lr == 0.005
    # a resumed run continues with the command line that started it
    assert make_config("model=rnn", "optimizer.lr=0.01", "resume=auto").optimizer.lr == 0.01
