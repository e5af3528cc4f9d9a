"""data=image_folder: a folder of a person's pictures trains, predicts and exports."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litlab import PROJECT_ROOT
from litlab.build import build_datamodule, load_trained
from litlab.errors import ConfigError, DataError
from litlab.predict import predict
from litlab.train import train
from tests.helpers import (
    REAL_DATA_DIR,
    claim,
    compose_quiet,
    draw,
    error_paragraph,
    make_image_folder,
    requires_real_mnist,
    run_entry_point,
)


def rotated_jpeg(path: Path, side: str) -> Path:
    """Stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to show)."""
    upright = draw(side, np.random.default_rng(1), "RGB", (40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.rotate(90, expand=True).save(path, exif=exif)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "pictures")


def folder_config(tmp_path: Path, root: Path, *extra: str, run: str = "run"):
    overrides = [
        "data=image_folder",
        f"data.root={root}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.image_size=16",
        "data.batch_size=16",
        "data.workers=1",
        "model=mlp",
        "model.hidden_sizes=[32]",
        "trainer.max_epochs=4",
        *extra,
    ]
    return compose_quiet(overrides, tmp_path / run)


def test_a_folder_of_mixed_pictures_trains_and_its_checkpoint_predicts_and_exports(
    tmp_path, folder
):
    cfg = folder_config(tmp_path, folder)
    assert cfg.data.class_names == ["left", "right"]
    assert list(cfg.data.input_shape) == [3, 16, 16]  # colour: some files are RGB
    metrics = train(cfg)
    assert metrics["test/acc"] >= 0.9
    checkpoint = torch.load(tmp_path / "run/checkpoints/best.ckpt", weights_only=False)
    stats = checkpoint["ImageFolderDataModule"]
    assert len(stats["channel_mean"]) == 3 and all(0 < s < 1 for s in stats["channel_std"])
    # the statistics come from the checkpoint: predict needs neither the folder nor its cache
    moved = folder.rename(tmp_path / "moved")
    trained = load_trained(str(tmp_path / "run/checkpoints/best.ckpt"), str(tmp_path))
    assert torch.allclose(trained.datamodule.channel_mean, torch.tensor(stats["channel_mean"]))
    new = tmp_path / "new"
    new.mkdir()
    rotated_jpeg(new / "sideways_left.jpg", "left")
    draw("right", np.random.default_rng(5), "LA", (64, 64)).save(new / "big_right.png")
    predict_cfg = compose_quiet(
        [f"ckpt_path={tmp_path / 'run/checkpoints/best.ckpt'}", f"inputs={new}"],
        tmp_path / "predict",
        config_name="predict",
    )
    rows = predict(predict_cfg)
    assert [(Path(r["input"]).name, r["predicted"]) for r in rows] == [
        ("big_right.png", "right"),
        ("sideways_left.jpg", "left"),
    ]
    assert rows[0]["preprocessing"] == "colour, 16x16 (crop)"
    assert moved.is_dir()


def test_the_cache_is_made_once_reused_and_rebuilt_when_a_file_changes(tmp_path, folder):
    cfg = folder_config(tmp_path, folder, "trainer.max_epochs=1", "test=false")
    train(cfg)
    caches = sorted((tmp_path / "cache").glob("*-v?.npy"))  # the pixels (beside: .sums.npy)
    assert len(caches) == 1
    array = np.load(caches[0], mmap_mode="r")
    assert array.shape == (80, 3, 16, 16) and array.dtype == np.uint8
    made = caches[0].stat().st_mtime_ns
    train(folder_config(tmp_path, folder, "trainer.max_epochs=1", "test=false", run="again"))
    assert sorted((tmp_path / "cache").glob("*-v?.npy")) == caches
    assert caches[0].stat().st_mtime_ns == made  # reused, not written again
    time.sleep(0.01)
    draw("left", np.random.default_rng(9), "L", (30, 30)).save(folder / "left" / "0.png")
    train(folder_config(tmp_path, folder, "trainer.max_epochs=1", "test=false", run="changed"))
    assert len(list((tmp_path / "cache").glob("*-v?.npy"))) == 2
    assert not list(folder.rglob("*.npy"))  # nothing written into the user's folder


def test_unreadable_files_are_named_at_once_or_skipped_and_counted(tmp_path, folder):
    (folder / "left" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "right" / "notes.txt").write_text("not a picture")
    cfg = folder_config(tmp_path, folder, "trainer.max_epochs=1")
    with pytest.raises(
        DataError, match=r"2 of the 82 files.*broken.jpg.*notes.txt.*skip_bad_files"
    ):
        train(cfg)
    train(folder_config(tmp_path, folder, "trainer.max_epochs=1", "data.skip_bad_files=true"))
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Prepared: 2 unreadable file(s) skipped" in report
    assert "train 64, val 8, test 8 samples" in report  # 80 readable pictures


def test_fixed_splits_are_kept_and_grey_files_give_one_channel(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 30), ("test", 6)):
        for side in ("left", "right"):
            (tmp_path / "f" / split / side).mkdir(parents=True)
            for index in range(count):
                draw(side, rng, "L", (20, 20)).save(tmp_path / "f" / split / side / f"{index}.png")
    cfg = folder_config(tmp_path, tmp_path / "f", "data.val_size=10", "trainer.max_epochs=1")
    assert list(cfg.data.input_shape) == [1, 16, 16]
    train(cfg)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "train 50, val 10, test 12 samples" in report


def test_a_bad_folder_ends_the_command_as_one_paragraph_and_writes_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_entry_point(
        "train.py",
        "data=image_folder",
        f"data.root={tmp_path / 'empty'}",
        data_dir=tmp_path,
        cwd=tmp_path,
    )
    assert result.returncode == 2  # a data error
    assert "Traceback" not in result.stderr
    assert f"data.root={tmp_path / 'empty'} is empty" in error_paragraph(result)
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.ckpt"))


def test_an_image_size_too_small_for_the_model_is_a_config_error(tmp_path, folder):
    cfg = folder_config(tmp_path, folder, "model=cnn", "data.image_size=4")
    with pytest.raises(ConfigError, match=r"model.kernel_sizes=.*too small for kernel sizes"):
        train(cfg)


@pytest.mark.slow
@requires_real_mnist
@pytest.mark.claim
def test_resnet_reads_digits_in_random_colours_on_random_backgrounds(tmp_path):
    """A colour folder at 32x32 whose colours say nothing of the class: 97 % or more."""
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    from mnist_folder import write_folder

    write_folder(tmp_path / "colours", REAL_DATA_DIR, 20_000, 2_000, colour=True)
    cfg = compose_quiet(
        [
            "data=image_folder",
            f"data.root={tmp_path / 'colours'}",
            f"data.cache_dir={tmp_path / 'cache'}",
            "model=resnet",
            "trainer.max_epochs=6",
        ],
        tmp_path / "run",
    )
    assert list(cfg.data.input_shape) == [3, 32, 32]
    claim("test accuracy", train(cfg)["test/acc"], above=0.97)  # 0.978 (seed 42)


def test_each_picture_is_named_by_its_file(tmp_path, folder):
    datamodule = build_datamodule(folder_config(tmp_path, folder))
    datamodule.setup()
    targets = datamodule.splits["test"][1]
    for index in range(len(targets)):
        name = datamodule.sample_name("test", index)
        assert (folder / name).is_file()
        assert name.split("/")[0] == datamodule.class_names[int(targets[index])]


def test_the_channel_statistics_are_the_training_images_own(tmp_path, folder):
    datamodule = build_datamodule(folder_config(tmp_path, folder))
    datamodule.setup()
    train = datamodule.splits["train"][0].float() / 255
    assert torch.allclose(datamodule.channel_mean, train.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(datamodule.channel_std, train.std((0, 2, 3)), atol=1e-3)


def test_a_folder_of_nothing_readable_says_so_even_when_skipping(tmp_path):
    for side in ("left", "right"):
        (tmp_path / "heic" / side).mkdir(parents=True)
        for index in range(3):
            (tmp_path / "heic" / side / f"{index}.heic").write_bytes(b"not decodable here")
    cfg = folder_config(tmp_path, tmp_path / "heic", "data.skip_bad_files=true", "data.channels=3")
    with pytest.raises(DataError, match=r"None of the 6 files .* could be read as images"):
        train(cfg)
