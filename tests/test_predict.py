"""predict(cfg) and predict.py: a trained model's predictions for a person's own files."""

import csv
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from litlab.build import load_trained
from litlab.lightning_modules import as_predictions
from litlab.predict import predict, prediction_table
from litlab.train import train
from tests.helpers import (
    REAL_DATA_DIR,
    claim,
    error_paragraph,
    mnist_module,
    requires_real_mnist,
    run_entry_point,
)

OFF = [f"preprocess.{step}=false" for step in ("invert", "level", "crop", "fit", "centre")]


def best_checkpoint(cfg) -> Path:
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"


def write_test_images(data_dir: Path, folder: Path, count: int) -> torch.Tensor:
    """The first ``count`` test images of a data module as PNG files; returns them."""
    datamodule = mnist_module(data_dir)
    datamodule.setup()
    images = datamodule.splits["test"][0][:count]
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image.numpy()).save(folder / f"{index:03d}.png")
    return images


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_image_files_get_the_predictions_of_the_original_tensors(mnist_run, make_config):
    cfg, _ = mnist_run
    data_dir = Path(cfg.paths.data_dir)
    images = write_test_images(data_dir, data_dir / "mine", 20)
    predict_cfg = make_config(
        f"ckpt_path={best_checkpoint(cfg)}",
        f"inputs={data_dir / 'mine'}",
        "top_k=4",
        *OFF,
        config_name="predict",
        run_dir="predicted",
    )
    rows = predict(predict_cfg)

    trained = load_trained(str(best_checkpoint(cfg)), str(data_dir))
    with torch.no_grad():
        probabilities = trained.module(trained.datamodule.prepare_inputs(images)).softmax(-1)
    assert [row["predicted"] for row in rows] == [str(int(c)) for c in probabilities.argmax(-1)]
    for row, expected in zip(rows, probabilities, strict=True):
        assert row["confidence"] == pytest.approx(float(expected.max()), abs=1e-5)
        assert [p for _, p in row["top"]] == sorted((p for _, p in row["top"]), reverse=True)
        assert len(row["top"]) == 4 and row["preprocessing"] == ""  # every step off
    folder = Path(predict_cfg.paths.output_dir)
    written = read_csv(folder / "predictions.csv")
    assert [line["predicted"] for line in written] == [row["predicted"] for row in rows]
    assert list(written[0]) == [
        "input",
        "predicted",
        "confidence",
        *[f"top{r}{s}" for r in range(1, 5) for s in ("", "_probability")],
        "preprocessing",
    ]
    assert float(written[0]["top1_probability"]) == float(written[0]["confidence"])
    assert (folder / "predictions.png").stat().st_size > 1000


def test_pictures_without_ink_get_no_class_and_top_k_stops_at_the_classes(
    mnist_run, make_config, tmp_path, caplog
):
    cfg, _ = mnist_run
    folder = tmp_path / "mine"
    write_test_images(Path(cfg.paths.data_dir), folder, 1)  # 000.png: a digit
    Image.new("L", (60, 40), 200).save(folder / "grey_page.png")
    Image.new("L", (1, 1), 0).save(folder / "one_pixel.png")
    Image.new("RGB", (30, 30), (250, 250, 245)).save(folder / "rgb_page.png")
    Image.fromarray(np.zeros((40, 30), dtype=np.uint16)).save(folder / "scan_zeros.png")
    Image.fromarray(np.full((40, 30), 30000, dtype=np.uint16)).save(folder / "scan_grey.png")
    predict_cfg = make_config(
        f"ckpt_path={best_checkpoint(cfg)}", f"inputs={folder}", "top_k=50", config_name="predict"
    )
    with caplog.at_level(logging.DEBUG, logger="litlab.predict"):
        rows = predict(predict_cfg)
    assert caplog.text.count("top_k=50, but the model has 10 classes") == 1  # in the log file only

    digit, *blank = rows
    assert digit["predicted"] is not None and len(digit["top"]) == 10
    assert [(r["predicted"], r["confidence"], r["top"]) for r in blank] == [(None, None, [])] * 5
    written = read_csv(Path(predict_cfg.paths.output_dir) / "predictions.csv")
    assert list(written[0])[-3:] == ["top10", "top10_probability", "preprocessing"]
    for line in written[1:]:
        assert "no ink found" in line["preprocessing"]
        assert {v for k, v in line.items() if k not in ("input", "preprocessing")} == {""}
    table = prediction_table(rows).splitlines()
    assert table[1].split()[:2] == ["000.png", digit["predicted"]]
    assert [line.split() for line in table[2:]] == [
        [Path(row["input"]).name, "-", "-", "no", "ink:", "nothing", "to", "predict"]
        for row in blank
    ]


@pytest.mark.parametrize(
    ("data", "loss"),
    [("wine", "cross_entropy"), ("breast_cancer", "bce_with_logits"), ("diabetes", "mse")],
)
def test_tables_are_predicted_in_the_data_sets_own_units(make_config, data, loss, tmp_path):
    cfg = make_config(f"data={data}", f"loss={loss}", "model=mlp", "trainer.max_epochs=2")
    train(cfg)
    trained = load_trained(str(best_checkpoint(cfg)), cfg.paths.data_dir)
    datamodule = trained.datamodule
    raw = datamodule.raw_inputs("test")[:5]
    table = tmp_path / "samples.csv"
    rows = [",".join(datamodule.feature_names)]
    rows += [",".join(repr(float(v)) for v in sample) for sample in raw]
    table.write_text("\n".join(rows) + "\n")
    predict_cfg = make_config(
        f"ckpt_path={best_checkpoint(cfg)}", f"inputs={table}", config_name="predict", run_dir="p"
    )
    predicted = predict(predict_cfg)
    with torch.no_grad():
        expected = as_predictions(
            trained.module.hparams.task, trained.module(datamodule.splits["test"][0][:5])
        )
    if data == "diabetes":  # a disease progression score, about 25..346, not a z-score
        values = torch.tensor([row["value"] for row in predicted])
        torch.testing.assert_close(values, datamodule.target_units(expected), rtol=1e-4, atol=1e-3)
        assert values.mean() > 20
    elif data == "breast_cancer":
        confidence = torch.where(expected > 0.5, expected, 1 - expected)
        names = [datamodule.class_names[int(p > 0.5)] for p in expected]
        assert [row["predicted"] for row in predicted] == names
        assert [row["confidence"] for row in predicted] == pytest.approx(confidence.tolist())
    else:
        names = [datamodule.class_names[int(c)] for c in expected.argmax(-1)]
        assert [row["predicted"] for row in predicted] == names
    assert len(read_csv(Path(predict_cfg.paths.output_dir) / "predictions.csv")) == 5


def test_predict_py_prints_a_table_and_lists_skipped_files(mnist_run, tmp_path):
    cfg, _ = mnist_run
    data_dir = Path(cfg.paths.data_dir)
    write_test_images(data_dir, tmp_path / "mine", 3)
    (tmp_path / "mine" / "notes.txt").write_text("not an image")
    result = run_entry_point(
        "predict.py",
        f"ckpt_path={best_checkpoint(cfg)}",
        f"inputs={tmp_path / 'mine'}",
        "hydra.run.dir=predicted",
        data_dir=data_dir,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()  # log lines around the table, however they are formatted
    start = next(i for i, line in enumerate(lines) if line.startswith("input "))
    table = lines[start : start + 4]
    assert table[0].split() == ["input", "predicted", "confidence", "next", "most", "likely"]
    assert [line.split()[0] for line in table[1:]] == ["000.png", "001.png", "002.png"]
    assert "notes.txt: not an image or a CSV file" in result.stdout  # Hydra logs to stdout
    assert (tmp_path / "predicted" / "predictions.csv").is_file()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_images", r"holds 1 file\(s\), none of them an image"),
        pytest.param("unreadable", r"broken.png could not be read", marks=pytest.mark.slow),
        # each case costs a Python start with torch (5 s): the rest run with the slow tests
        pytest.param("wrong_columns", r"takes 28x28 images: give image", marks=pytest.mark.slow),
        pytest.param("foreign_checkpoint", r"was not written by litlab", marks=pytest.mark.slow),
        pytest.param(
            "bad_option",
            r"preprocess.invert='maybe' is invalid: it must be auto, true or false",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_inputs_give_one_paragraph_and_leave_no_predictions(mnist_run, tmp_path, case, message):
    cfg, _ = mnist_run
    inputs, checkpoint, extra = tmp_path / "in", best_checkpoint(cfg), []
    inputs.mkdir()
    Image.new("L", (28, 28)).save(inputs / "fine.png")
    if case == "no_images":
        (inputs / "fine.png").unlink()
        (inputs / "notes.txt").write_text("x")
    elif case == "unreadable":
        (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    elif case == "wrong_columns":
        inputs = inputs / "table.csv"
        inputs.write_text("a,b\n1,2\n")
    elif case == "foreign_checkpoint":
        checkpoint = tmp_path / "foreign.ckpt"
        torch.save({"state_dict": {}}, checkpoint)
    else:
        extra = ["preprocess.invert=maybe"]
    result = run_entry_point(
        "predict.py",
        f"ckpt_path={checkpoint}",
        f"inputs={inputs}",
        "hydra.run.dir=predicted",
        *extra,
        data_dir=Path(cfg.paths.data_dir),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    paragraph = error_paragraph(result)
    assert result.stderr.count("(Set HYDRA_FULL_ERROR=1 for a traceback.)") == 1
    assert re.search(message, paragraph), paragraph
    assert not (tmp_path / "predicted" / "predictions.csv").exists()


# -- real MNIST (slow) -------------------------------------------------------------------------
def user_style(image: torch.Tensor, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit as a person would hand it in: black ink on white paper, 3-6 times larger,
    anywhere on a bigger page."""
    scale = int(rng.integers(3, 7))
    ink = Image.fromarray(255 - image.numpy())
    digit = ink.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    page = Image.new("L", (28 * scale + 120, 28 * scale + 80), 255)
    page.paste(digit, (int(rng.integers(0, 120)), int(rng.integers(0, 80))))
    return page


def font_digit(digit: str) -> Image.Image:
    """A digit typed in Pillow's own font, black on a white RGB page, off centre."""
    page = Image.new("RGB", (150, 180), "white")
    ImageDraw.Draw(page).text((30, 10), digit, fill="black", font=ImageFont.load_default(size=120))
    return page


@pytest.mark.slow
@pytest.mark.claim
@requires_real_mnist
def test_handwriting_on_paper_is_read_as_the_original_tensors_are(real_cnn, make_config, tmp_path):
    trained = load_trained(str(real_cnn), str(REAL_DATA_DIR))
    trained.datamodule.setup()
    images = trained.datamodule.splits["test"][0][:1000]
    rng = np.random.default_rng(0)
    pages = tmp_path / "pages"
    pages.mkdir()
    for index, image in enumerate(images):  # every third a JPEG, with its artefacts
        suffix = "jpg" if index % 3 == 0 else "png"
        user_style(image, rng).save(pages / f"{index:04d}.{suffix}", quality=85)
    cfg = make_config(
        f"ckpt_path={real_cnn}", f"inputs={pages}", config_name="predict", run_dir="p"
    )
    rows = predict(cfg)
    with torch.no_grad():
        expected = trained.module(trained.datamodule.prepare_inputs(images)).argmax(-1)
    predicted = torch.tensor([int(row["predicted"]) for row in rows])
    agreement = (predicted == expected).float().mean().item()
    claim("agreement with the tensors' predictions", agreement, above=0.99)
    assert "inverted (light background)" in rows[0]["preprocessing"]
    assert "centred by mass in 28x28" in rows[0]["preprocessing"]


@pytest.mark.slow
@pytest.mark.claim
@requires_real_mnist
def test_digits_typed_in_a_font_are_read(real_cnn, make_config, tmp_path):
    for digit in "0123456789":
        font_digit(digit).save(tmp_path / f"typed_{digit}.png")
    cfg = make_config(
        f"ckpt_path={real_cnn}", f"inputs={tmp_path}/typed_*.png", config_name="predict"
    )
    predicted = {Path(row["input"]).stem[-1]: row["predicted"] for row in predict(cfg)}
    correct = [digit for digit, guess in predicted.items() if digit == guess]
    assert "7" in correct, predicted
    claim("typed digits read right, of 10", len(correct), above=7.5)  # 9 (its 1 reads as 7)
