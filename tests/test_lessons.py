"""docs/lessons.md: its snippets print what the text shows, every command in it composes, and
each lesson's recipe still comes out as the text says, run in full at seed 42 as a learner's
command runs it. The tabular lessons are in the default suite; the real-MNIST lessons, the
adding problem and the XOR sweep typed as a command run with the slow tests."""

import doctest
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from litlab import PROJECT_ROOT
from litlab.build import build_module
from litlab.config import compose_config
from litlab.config.checks import validate_config
from litlab.errors import NonFiniteLossError
from litlab.report.run import RunFolder, load_run
from litlab.report.sweep import SUMMARY_NAME
from litlab.run_folder import REPORT
from litlab.train import train
from tests.helpers import (
    LESSONS,
    REAL_DATA_DIR,
    REAL_MNIST,
    claim,
    compose_quiet,
    lesson_commands,
    make_folder_a_command_reads,
    requires_real_mnist,
    run_entry_point,
    run_sweep,
    runs_of,
)


def lesson_run(make_config, *overrides: str, run_dir: str = "run") -> tuple[dict, RunFolder]:
    """train() on a lesson's overrides: (returned metrics, the run folder as the report reads
    it)."""
    cfg = make_config(*overrides, run_dir=run_dir)
    metrics = train(cfg)
    return metrics, load_run(Path(cfg.paths.output_dir))


def report_text(run: RunFolder) -> str:
    return (run.path / REPORT).read_text()


def first_to_last_gradient(run: RunFolder, sample: int = 0) -> float:
    """How many times larger the output layer's gradient norm is than the first layer's, at a
    sampled step of the diagnostics callback (0: the first)."""
    norms = run.data.diagnostics.grad_norm
    layers = [name for name in norms if name != "total"]
    return norms[layers[-1]][sample] / norms[layers[0]][sample]


# -- the text --------------------------------------------------------------------------------
def test_the_snippets_print_what_the_text_shows():
    result = doctest.testfile(str(LESSONS), module_relative=False, report=True)
    assert result.attempted >= 30
    assert result.failed == 0


def test_the_lessons_give_a_command_for_each_of_their_fifteen_topics():
    titles = re.findall(r"^## (\d+)\. ", LESSONS.read_text(), flags=re.M)
    assert [int(number) for number in titles] == list(range(1, 16))
    experiments = {p.stem for p in (PROJECT_ROOT / "conf" / "experiment").glob("lesson_*.yaml")}
    used = {
        m for c in lesson_commands("train.py") for m in re.findall(r"experiment=(lesson_\w+)", c)
    }
    assert used == experiments  # every lesson recipe is taught, none is missing


@pytest.mark.parametrize("command", lesson_commands("train.py"))
def test_every_training_command_in_the_lessons_composes_and_builds(command, tmp_path, monkeypatch):
    folder = make_folder_a_command_reads(command, tmp_path)  # lesson 14's folder of files
    monkeypatch.chdir(tmp_path if folder else PROJECT_ROOT)  # the docs' paths are relative
    for overrides in runs_of(command):
        cfg = compose_config([*overrides, f"paths.data_dir={tmp_path}"], tmp_path / "run")
        validate_config(cfg)
        assert build_module(cfg).net is not None, overrides


# -- 1. the perceptron -----------------------------------------------------------------------
@pytest.mark.claim
def test_lesson_1_a_perceptron_learns_the_spam_rule(make_config):
    metrics, run = lesson_run(make_config, "experiment=lesson_perceptron")
    assert "Perceptron: 4 parameters" in report_text(run)
    claim("test accuracy", metrics["test/acc"], above=0.87)  # 0.905; seeds 1-5: 0.888-0.903


# -- 2. XOR ----------------------------------------------------------------------------------
@pytest.mark.slow  # the sweep as typed, through Hydra's multirun: 18 s
@pytest.mark.claim
def test_lesson_2_xor_needs_a_hidden_layer(tmp_path):
    result = run_sweep(tmp_path, "experiment=lesson_xor", "model.hidden_sizes=[],[8]")
    assert result.returncode == 0, result.stderr[-3000:]
    perceptron, hidden = (load_run(tmp_path / "sweep" / job) for job in ("0", "1"))
    assert perceptron.config["model"]["hidden_sizes"] == []
    claim("perceptron: test accuracy", perceptron.metrics["test/acc"], below=0.77)  # 3 of 4
    claim("perceptron: test loss", perceptron.metrics["test/loss"], above=0.68)  # ln 2 = 0.693
    assert "**underfitting**" in report_text(perceptron)
    claim("8 hidden units: test accuracy", hidden.metrics["test/acc"], above=0.97)
    summary = (tmp_path / "sweep" / f"{SUMMARY_NAME}.md").read_text()
    assert "model.hidden_sizes=[]" in summary and "model.hidden_sizes=[8]" in summary


# -- 3. activations --------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.claim
def test_lesson_3_sigmoid_gradients_vanish_tanh_and_relu_pass_them_back(make_config, activation):
    metrics, run = lesson_run(
        make_config, "experiment=lesson_activations", f"model.activation={activation}"
    )
    ratio = first_to_last_gradient(run)
    if activation == "sigmoid":
        claim("gradient ratio, last to first layer", ratio, above=100)
        assert "**vanishing gradients**" in report_text(run)
        claim("test accuracy", metrics["test/acc"], below=0.2)  # chance: 0.1
    else:
        claim("gradient ratio, last to first layer", ratio, below=3)
        assert "vanishing" not in report_text(run)
        claim("test accuracy", metrics["test/acc"], above=0.93)


# -- 4. dying ReLU --------------------------------------------------------------------------
# At lr 0.8 training is chaotic: which seed keeps enough units to do well, and whether a leaky
# run diverges, changes with the CPU's kernels (on an Intel Xeon seed 42's ReLU run reached
# 0.950, on AMD EPYC 0.822). What holds on every floating-point path and seed measured (9 seeds
# x 4 paths, scripts/claims.py) is the mechanism: 59 % to 94 % of the first layer's ReLU units
# die at this rate, 0 % to 8 % when each step's gradient is clipped to norm 1, and over seeds
# the rate decides the accuracy.
def dead_share(run: RunFolder) -> float:
    """The share of the first hidden layer's ReLU units dead, over the last 5 samples."""
    dead = run.data.diagnostics.dead_relu["layers.2"]
    return sum(dead[-5:]) / 5


@pytest.mark.claim
def test_lesson_4_relu_units_die_at_a_too_high_rate_and_live_when_the_step_is_bounded(
    make_config,
):
    _, run = lesson_run(make_config, "experiment=lesson_dying_relu", run_dir="relu")
    claim("dead share at lr 0.8", dead_share(run), above=0.5)  # 0.59 to 0.94 measured
    assert "**dying ReLU**" in report_text(run)
    _, clipped = lesson_run(
        make_config,
        "experiment=lesson_dying_relu",
        "trainer.gradient_clip_val=1.0",
        run_dir="clipped",
    )
    claim("dead share at lr 0.8, clipped", dead_share(clipped), below=0.25)  # 0 to 0.08
    assert "dying ReLU" not in report_text(clipped)


@pytest.mark.slow  # 10 runs of 20 epochs: 30 s
@pytest.mark.claim
def test_lesson_4_over_seeds_the_rate_decides_how_many_units_die_and_the_accuracy(make_config):
    dead, accuracy = {}, {}
    for lr in ("0.8", "0.5"):
        dead[lr], accuracy[lr] = [], []
        for seed in (42, 1, 2, 3, 4):
            overrides = ["experiment=lesson_dying_relu", f"optimizer.lr={lr}", f"seed={seed}"]
            try:
                metrics, run = lesson_run(make_config, *overrides, run_dir=f"{lr}_{seed}")
            except NonFiniteLossError:  # 1 ReLU run in 36 at lr 0.8: it scores nothing
                accuracy[lr].append(0.0)
                continue
            dead[lr].append(dead_share(run))
            accuracy[lr].append(metrics["test/acc"])
    claim("median dead share at lr 0.8", statistics.median(dead["0.8"]), above=0.6)  # 0.82-0.86
    claim("median dead share at lr 0.5", statistics.median(dead["0.5"]), below=0.4)  # 0.11-0.20
    claim("median test accuracy at lr 0.5", statistics.median(accuracy["0.5"]), above=0.95)
    gain = statistics.mean(accuracy["0.5"]) - statistics.mean(accuracy["0.8"])
    claim("mean test accuracy, lr 0.5 minus 0.8", gain, above=0.05)  # 0.15 to 0.23


# -- 5. losses -------------------------------------------------------------------------------
@pytest.mark.claim
def test_lesson_5_mae_shrugs_off_outliers_that_bend_mse(make_config):
    mse, _ = lesson_run(make_config, "experiment=lesson_losses", "loss=mse", run_dir="mse")
    mae, _ = lesson_run(make_config, "experiment=lesson_losses", "loss=mae", run_dir="mae")
    claim("MAE's test MAE / MSE's", mae["test/mae"] / mse["test/mae"], below=0.5)
    claim("MAE: test R2", mae["test/r2"], above=0.93)
    claim("MSE: test R2", mse["test/r2"], below=0.8)


@pytest.mark.claim
def test_lesson_5_binary_cross_entropy_on_tumours(make_config):
    """Over three seeds: one seed's 114 test tumours move by a tumour (0.0088) or two between
    floating-point paths, and from 0.939 (seed 43) to 0.974 (seed 42) between seeds."""
    accuracy = [
        lesson_run(
            make_config,
            "data=breast_cancer",
            "model=mlp",
            "loss=bce_with_logits",
            f"seed={seed}",
            run_dir=str(seed),
        )[0]["test/acc"]
        for seed in (42, 1, 2)
    ]
    claim("median test accuracy, 3 seeds", statistics.median(accuracy), above=0.93)


# -- 8. network design -----------------------------------------------------------------------
@pytest.mark.claim
def test_lesson_8_the_housing_regressor_has_3521_parameters(make_config):
    metrics, run = lesson_run(make_config, "experiment=lesson_housing")
    assert "MLP: 3,521 parameters" in report_text(run)
    claim("test R2", metrics["test/r2"], above=0.93)


@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_8_the_mnist_mlp_has_109386_parameters(make_config):
    metrics, run = lesson_run(make_config, *REAL_MNIST, "experiment=lesson_mnist_mlp")
    assert "MLP: 109,386 parameters" in report_text(run)
    claim("test accuracy", metrics["test/acc"], above=0.97)


# -- 6. optimizers ---------------------------------------------------------------------------
@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_6_momentum_and_adam_get_further_than_plain_sgd_in_one_epoch(make_config):
    accuracy = {
        name: lesson_run(
            make_config,
            *REAL_MNIST,
            "experiment=lesson_optimizers",
            f"optimizer={name}",
            run_dir=name,
        )[0]["test/acc"]
        for name in ("plain_sgd", "sgd", "adam")
    }
    claim("plain SGD: test accuracy", accuracy["plain_sgd"], above=0.90)
    claim("momentum minus plain SGD", accuracy["sgd"] - accuracy["plain_sgd"], above=0.02)
    claim("Adam minus plain SGD", accuracy["adam"] - accuracy["plain_sgd"], above=0.01)


# -- 7. the learning rate -------------------------------------------------------------------
@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_7_the_finder_suggests_a_rate_between_too_low_and_too_high(make_config):
    _, found = lesson_run(
        make_config,
        *REAL_MNIST,
        "experiment=lesson_learning_rate",
        "tune=lr_find",
        "tune.only=true",
        run_dir="find",
    )
    suggestion = found.data.lr_find.suggestion
    claim("suggested rate", suggestion, above=0.1, below=0.7)  # 0.22 (seed 42); 0.15 to 0.50
    accuracy, problems = {}, {}
    for lr in ("0.001", "0.5", "3"):
        metrics, run = lesson_run(
            make_config,
            *REAL_MNIST,
            "experiment=lesson_learning_rate",
            f"optimizer.lr={lr}",
            run_dir=lr,
        )
        accuracy[lr], problems[lr] = metrics["test/acc"], report_text(run)
    claim("lr 0.001: test accuracy", accuracy["0.001"], below=0.8)
    claim("lr 0.5: test accuracy", accuracy["0.5"], above=0.95)
    claim("lr 3: test accuracy", accuracy["3"], below=0.2)
    assert "**dying ReLU**" in problems["3"]


# -- 9. over- and underfitting ---------------------------------------------------------------
def loss_gap(run: RunFolder) -> float:
    """Validation loss minus training loss at the last epoch."""
    return run.history[-1]["val/loss"] - run.history[-1]["train/loss"]


@pytest.fixture(scope="module")
def overfitting_runs(tmp_path_factory) -> dict[str, RunFolder]:
    """lesson_overfitting as the lesson runs it: as it is, with each remedy, and tiny."""
    variants = {
        "as is": [],
        "dropout": ["model.dropout=0.5"],
        "weight decay": ["optimizer.weight_decay=0.01"],
        "early stopping": [
            "callbacks.early_stopping.patience=3",
            "callbacks.early_stopping.patience_steps=0",
        ],
        "augmentation": ["data.augment=true"],
        "tiny": ["model.hidden_sizes=[2]", "data.train_size=null", "trainer.max_epochs=5"],
    }
    runs = {}
    for name, extra in variants.items():
        folder = tmp_path_factory.mktemp("overfitting") / "run"
        cfg = compose_quiet([*REAL_MNIST, "experiment=lesson_overfitting", *extra], folder)
        train(cfg)
        runs[name] = load_run(folder)
    return runs


@pytest.mark.xdist_group("overfitting")  # one worker trains the six runs
@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_9_a_large_mlp_learns_1000_digits_by_heart(overfitting_runs):
    run = overfitting_runs["as is"]
    claim("training accuracy", run.history[-1]["train/acc"], above=0.995)
    claim("loss gap", loss_gap(run), above=0.3)
    rise = run.history[-1]["val/loss"] - min(row["val/loss"] for row in run.history)
    claim("validation loss above its minimum", rise, above=0.03)
    assert "**overfitting**" in report_text(run)


@pytest.mark.xdist_group("overfitting")  # one worker trains the six runs
@pytest.mark.slow
@requires_real_mnist
@pytest.mark.parametrize("remedy", ["dropout", "weight decay", "early stopping", "augmentation"])
@pytest.mark.claim
def test_lesson_9_each_remedy_narrows_the_gap(overfitting_runs, remedy):
    narrowed = loss_gap(overfitting_runs["as is"]) - loss_gap(overfitting_runs[remedy])
    claim("loss gap narrowed by", narrowed, above=0.01)
    if remedy == "early stopping":
        assert len(overfitting_runs[remedy].history) < len(overfitting_runs["as is"].history)


@pytest.mark.xdist_group("overfitting")  # one worker trains the six runs
@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_9_a_tiny_network_underfits(overfitting_runs):
    run = overfitting_runs["tiny"]
    claim("training accuracy", run.history[-1]["train/acc"], below=0.85)
    assert "**underfitting**" in report_text(run)


# -- 10. CNNs --------------------------------------------------------------------------------
@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_10_lenet5_gets_to_99_percent(real_cnn):
    run = load_run(real_cnn.parent.parent)
    # 99.22 % at seed 42 moves to 99.14 % with other kernels (scripts/claims.py) and to 99.08 %
    # at seed 2: the bound sits 0.2 points under the lowest, outside what seeds and CPUs move
    claim("test accuracy", run.metrics["test/acc"], above=0.988)
    assert "CNN: 61,706 parameters" in report_text(run)


# -- 11. sequences ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("cell", "solved", "epochs"), [("lstm", True, 20), ("gru", True, 10), ("rnn", False, 20)]
)
@pytest.mark.claim
def test_lesson_11_the_adding_problem_needs_gated_memory(make_config, cell, solved, epochs):
    """seq_len=100 and the recipe's budget of 20 epochs (5,000 steps). With its forget gate
    started open the LSTM leaves the plateau after about 1,000 steps at seed 42 on every path
    measured, after 1,750 at the latest over seeds 1 and 2; started as PyTorch draws it, after
    1,250, 3,000 or not at all, by path. The GRU is done within half the budget on every path
    (its test MSE 0.0001)."""
    overrides = ["experiment=lesson_rnn", f"model.cell={cell}", f"trainer.max_epochs={epochs}"]
    metrics, run = lesson_run(make_config, *overrides)
    if solved:
        claim("test MSE", metrics["test/mse"], below=0.01)
    else:
        claim("test MSE", metrics["test/mse"], above=0.1)  # the mean predictor's is 0.167
        assert "**vanishing gradients**" in report_text(run)


# -- 12. attention ---------------------------------------------------------------------------
@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_12_a_small_transformer_reads_mnist(make_config):
    metrics, _ = lesson_run(make_config, *REAL_MNIST, "experiment=lesson_transformer")
    claim("test accuracy", metrics["test/acc"], above=0.97)


# -- 13. using the model ---------------------------------------------------------------------
def onnx_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", LESSONS.read_text(), flags=re.S)
    [snippet] = [block for block in blocks if "onnxruntime.InferenceSession" in block]
    return snippet


@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_13_predict_your_own_digits_and_run_the_onnx_export(real_cnn, tmp_path):
    examples = PROJECT_ROOT / "docs" / "examples" / "digits"
    predicted = run_entry_point(
        "predict.py",
        f"ckpt_path={real_cnn}",
        f"inputs={examples}",
        data_dir=REAL_DATA_DIR,
        cwd=tmp_path,
    )
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    lines = predicted.stdout.splitlines()
    rows = [line.split() for line in lines if re.match(r"(handwritten|typed)_\d\.", line)]
    assert len(rows) == 6
    right = sum(Path(name).stem[-1] == digit for name, digit, *_ in rows)  # handwritten_2.png
    claim("pictures read right, of 6", right, above=5.5)

    exported = run_entry_point(
        "export.py",
        f"ckpt_path={real_cnn}",
        "format=onnx",
        data_dir=REAL_DATA_DIR,
        cwd=tmp_path,
        quiet=False,  # export has no trainer to quieten
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "the same class for 10000 of 10000" in exported.stdout + exported.stderr
    [model] = (tmp_path / "outputs" / "export" / "runs").glob("*/model.onnx")
    snippet = onnx_snippet().replace("outputs/export/runs/<time>/model.onnx", str(model))
    output = subprocess.run(
        [sys.executable, "-c", snippet],
        env={**os.environ, "LITLAB_DATA_DIR": str(REAL_DATA_DIR)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert output.returncode == 0, output.stderr[-2000:]
    predicted_line, true_line = output.stdout.splitlines()
    assert predicted_line.split(":")[1].strip() == true_line.split(":")[1].strip()


# -- 14. your own data -----------------------------------------------------------------------
def lesson_14_command(*parts: str) -> list[str]:
    """The overrides of lesson 14's training command that holds every one of ``parts``."""
    [command] = [c for c in lesson_commands("train.py") if all(p in c for p in parts)]
    [overrides] = runs_of(command)
    return overrides


@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_lesson_14_mnist_written_as_files_trains_to_the_accuracy_of_data_mnist(
    make_config, tmp_path
):
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    from mnist_folder import write_folder

    write_folder(tmp_path / "mnist_folder", REAL_DATA_DIR)
    folder_run = lesson_14_command("experiment=lesson_own_images", "data.root=")
    folder_run = [
        f"data.root={tmp_path / 'mnist_folder'}" if o.startswith("data.root=") else o
        for o in folder_run
    ]
    from_files, _ = lesson_run(
        make_config, *folder_run, f"data.cache_dir={tmp_path / 'cache'}", run_dir="files"
    )
    mnist_run = lesson_14_command("experiment=lesson_own_images", "data=mnist")
    from_mnist, _ = lesson_run(make_config, *mnist_run, *REAL_MNIST, run_dir="mnist")
    claim("test accuracy from the files", from_files["test/acc"], above=0.96)
    assert abs(from_files["test/acc"] - from_mnist["test/acc"]) <= 0.005


@pytest.mark.slow
@pytest.mark.claim
@pytest.mark.parametrize(
    ("target", "metric", "above"), [("cultivar", "test/acc", 0.94), ("progression", "test/r2", 0.4)]
)
def test_lesson_14_the_example_tables_reach_the_lessons_figures(make_config, target, metric, above):
    overrides = lesson_14_command("experiment=lesson_own_table", f"data.target={target}")
    overrides = [  # the lesson's paths are relative to the project
        f"data.path={PROJECT_ROOT / o.partition('=')[2]}" if o.startswith("data.path=") else o
        for o in overrides
    ]
    metrics, run = lesson_run(make_config, *overrides)
    claim(metric, metrics[metric], above=above)
    assert "Prepared: missing values filled from the training split" in report_text(run)


# -- 15. cross-validation --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.claim
def test_lesson_15_one_split_says_little_and_the_folds_say_how_much(make_config):
    """Twenty random splits spread the test accuracy over several wines; 5-fold
    cross-validation's mean agrees with theirs, and the folds' best epochs flatter."""
    [sweep, folds] = [c for c in lesson_commands("train.py") if "lesson_cross_validation" in c]
    splits = [
        lesson_run(make_config, *overrides, run_dir=f"split_{index}")[0]["test/acc"]
        for index, overrides in enumerate(runs_of(sweep))
    ]
    assert len(splits) == 20
    claim("range of the 20 splits' test accuracies", max(splits) - min(splits), above=0.05)
    [overrides] = runs_of(folds)
    cfg = make_config(*overrides, run_dir="cv")
    cross_validated = train(cfg)
    assert (Path(cfg.paths.output_dir) / "cv_summary.md").is_file()
    mean_of_splits = statistics.mean(splits)
    claim(
        "cross-validated test accuracy against the 20 splits' mean",
        abs(cross_validated["test/acc"] - mean_of_splits),
        below=0.03,
    )
    claim("cross-validated validation accuracy", cross_validated["val/acc"], above=0.93)
    claim(
        "the folds' best epochs against their test",
        cross_validated["val/acc_best"] - cross_validated["test/acc"],
        above=0.0,
    )
