"""What several test files share: tiny MNIST files, composed configs, entry points run as a user
types them, and readers of what a run leaves. Test files import from here, never from each
other; conftest.py turns some of these into fixtures."""

import hashlib
import itertools
import json
import os
import re
import resource
import shlex
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litlab import CONFIG_DIR, PROJECT_ROOT
from litlab.config import compose_config
from litlab.data import MNISTDataModule

REAL_DATA_DIR = Path(os.environ.get("LITLAB_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
HAS_REAL_MNIST = (REAL_DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()
requires_real_mnist = pytest.mark.skipif(
    not HAS_REAL_MNIST, reason=f"real MNIST not found under {REAL_DATA_DIR}/MNIST/raw"
)
# Overrides of a run on the real MNIST files, never downloading.
REAL_MNIST = [f"paths.data_dir={REAL_DATA_DIR}", "data.download=false"]

# Fast settings for runs in tests: no progress bar or summary, no sanity check (++: also when
# callbacks=none).
QUIET = [
    "++callbacks.progress_bar=null",
    "++callbacks.model_summary=null",
    "trainer.num_sanity_val_steps=0",
]
# Drawing a confusion matrix per validation epoch costs more than a tiny test run's training;
# tests/test_report.py checks the images.
NO_IMAGES = [  # ++: also when callbacks=none
    "++callbacks.evaluation_images=null",
    "++callbacks.first_batch=null",  # tests/test_callbacks.py checks plots/batch.png
]

# Tiny MNIST (make_tiny_mnist): 500 training images in 16 batches of 32, 100 for validation.
TINY_MNIST = ["data.val_size=100", "data.batch_size=32", "data.download=false"]
TINY_TRAIN, TINY_TEST = 600, 200
STEPS_PER_EPOCH = 16


# -- tiny MNIST files ------------------------------------------------------------------------
def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor in the IDX format that torchvision's MNIST parser reads."""
    header = struct.pack(">I", 0x0800 + array.dim())
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())


def tiny_digits(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """28x28 uint8 images whose class is a bright 6x6 square at a class-specific place."""
    rng = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 10
    images = torch.randint(0, 60, (count, 28, 28), generator=rng)
    for i, label in enumerate(labels.tolist()):
        row, col = 2 + (label // 5) * 14, 1 + (label % 5) * 5
        images[i, row : row + 6, col : col + 6] = 255
    return images.to(torch.uint8), labels.to(torch.uint8)


def make_tiny_mnist(
    root: Path, train: int = TINY_TRAIN, test: int = TINY_TEST, folder: str = "MNIST"
) -> Path:
    """A data_dir holding small but learnable MNIST-format files in <folder>/raw/ (torchvision's
    class name: MNIST, FashionMNIST, KMNIST)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count, seed in (("train", train, 0), ("t10k", test, 1)):
        images, labels = tiny_digits(count, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def tiny_config(data_dir: Path, run_dir: Path, *extra: str) -> DictConfig:
    """An MLP on tiny MNIST: 16 steps per epoch."""
    overrides = mnist_overrides(data_dir, "model=mlp", "model.hidden_sizes=[32]", *extra)
    return compose_quiet(overrides, run_dir)


def mnist_overrides(data_dir: Path, *extra: str) -> list[str]:
    """A 3-epoch run on the tiny MNIST files in ``data_dir``."""
    return [f"paths.data_dir={data_dir}", *TINY_MNIST, "trainer.max_epochs=3", *extra]


# -- configs ---------------------------------------------------------------------------------
def options(group: str) -> list[str]:
    """The options of a config group, as conf/<group>/ holds them."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def compose_quiet(
    overrides: list[str],
    output_dir: Path,
    config_name: str = "train",
    quiet: bool = True,
    images: bool = False,
) -> DictConfig:
    """compose_config with the QUIET settings for tests (unless quiet=False), and without
    TensorBoard images (unless images=True)."""
    fast = [*(QUIET if quiet else []), *([] if images or config_name != "train" else NO_IMAGES)]
    cfg = compose_config([*fast, *overrides], output_dir, config_name)
    shift = int(os.environ.get("LITLAB_CLAIMS_SEED_SHIFT", "0"))  # scripts/claims.py's seed path
    if shift and isinstance(cfg.get("seed"), int):
        cfg = compose_config(
            [*fast, *overrides, f"seed={cfg.seed + shift}"], output_dir, config_name
        )
    return cfg


def runs_of(command: str) -> list[list[str]]:
    """The override lists of each job a ``python <script> ...`` command of the docs starts (a
    sweep: every combination; a search's interval: its low end), parsed by Hydra's own override
    parser."""
    arguments = [arg for arg in shlex.split(command)[2:] if arg not in ("-m", "--multirun")]
    choices = []
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        if override.is_interval_sweep():
            low = override.value().start
            choices.append([f"{key}={int(low) if 'int' in override.value().tags else low}"])
        elif override.is_sweep_override():
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([override.input_line])
    return [list(combination) for combination in itertools.product(*choices)]


README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
LESSONS = DOCS / "lessons.md"
# Guides whose commands are tested with their outcomes (test_lessons.py, test_entries.py).
TESTED_ELSEWHERE = {"lessons.md", "own_parts.md"}


def training_commands() -> list[str]:
    """Every ``python train.py ...`` line of the README and the guides (continuations joined,
    environment variables in front dropped), but those tested with their outcomes."""
    sources = [README, *(p for p in DOCS.glob("*.md") if p.name not in TESTED_ELSEWHERE)]
    found = []
    for path in sources:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                command = re.sub(r"^(\w+=\S+ )*", "", line.split("#")[0].strip())
                flags = ("--config-dir", "--cfg", "--help")  # the flags compose does not take
                if command.startswith("python train.py") and not any(f in command for f in flags):
                    found.append(command)
    return found


def lesson_commands(script: str) -> list[str]:
    """The ``python <script> ...`` lines of the lessons' bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", LESSONS.read_text(), flags=re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.startswith(f"python {script} ")
    ]


# -- entry points, run as a user types them --------------------------------------------------
def run_entry_point(
    script: str,
    *args: str,
    data_dir: Path,
    cwd: Path,
    quiet: bool = True,
    max_file_bytes: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run train.py or eval.py; run folders go under cwd/outputs, never into the checkout.
    ``max_file_bytes`` makes writing a larger file fail as on a full disk (EFBIG)."""
    env = {
        **os.environ,
        "LITLAB_DATA_DIR": str(data_dir),
        "PYTHONWARNINGS": "ignore",
        "LITLAB_ROOT": str(cwd),
    }
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *(QUIET if quiet else []), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=None if max_file_bytes is None else lambda: _limit_file_size(max_file_bytes),
    )


def _limit_file_size(max_bytes: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails, EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def run_sweep(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`python train.py -m <QUIET> <overrides>` into <cwd>/sweep, run folders under cwd."""
    return run_entry_point(
        "train.py",
        "-m",  # before the overrides: argparse takes one block of them
        *QUIET,
        *overrides,
        f"hydra.sweep.dir={cwd}/sweep",
        data_dir=cwd,
        cwd=cwd,
        quiet=False,
    )


SWEEP_ON_SYNTHETIC_DATA = [  # a quick job for sweeps
    "data=synthetic_classification",
    "trainer.max_epochs=2",
    "callbacks.evaluation_images=null",
]


def multirun(tmp_path: Path, *overrides: str) -> Path:
    """A sweep that must succeed; returns its folder."""
    result = run_sweep(tmp_path, *overrides)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sweep = tmp_path / "sweep"
    last = result.stdout.strip().splitlines()[-1]  # a sweep ends naming its summary
    assert last == f"Sweep folder: {sweep} (summary: {sweep / 'sweep_summary.md'})"
    return sweep


def job_results(sweep: Path) -> dict[str, tuple[dict, dict]]:
    """{job: (metrics.json, status.json)} for every job folder of the sweep."""
    jobs = sorted(p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml"))
    return {
        job.name: (
            json.loads((job / "metrics.json").read_text()),
            json.loads((job / "status.json").read_text()),
        )
        for job in jobs
    }


def assert_complete_jobs(sweep: Path, count: int) -> dict[str, tuple[dict, dict]]:
    results = job_results(sweep)
    assert sorted(results) == [str(i) for i in range(count)]
    for job, (metrics, status) in results.items():
        files = {p.name for p in (sweep / job).iterdir()}
        assert {"checkpoints", "tensorboard", "config.yaml", "run.json", "report.md"} <= files
        assert status["status"] == "ok"
        assert status["return_value"] == metrics["val/acc_best"]  # the optimized metric
    return results


def litlab_report(*args: str | Path) -> subprocess.CompletedProcess:
    """The installed `litlab-report` console script."""
    command = [str(Path(sys.executable).parent / "litlab-report"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def error_paragraph(result: subprocess.CompletedProcess) -> str:
    """The error message, unwrapped, after whatever Lightning printed before it."""
    assert "Error: " in result.stderr, result.stderr[-3000:]
    return " ".join(result.stderr[result.stderr.index("Error: ") :].split())


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file's hash: proof that a refused command destroyed nothing."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def events(run: Path) -> EventAccumulator:
    """Everything in a run's TensorBoard event files, read back by TensorBoard's own reader."""
    accumulator = EventAccumulator(
        str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "histograms": 0}
    )
    accumulator.Reload()
    return accumulator


def data_kwargs(name: str, **overrides) -> tuple[str, dict]:
    """The ``_target_`` and constructor kwargs of conf/data/<name>.yaml as Hydra composes it
    (defaults lists included), with ``overrides`` for some of its keys."""
    cfg = compose_config([f"data={name}"], Path("unused"))
    for key, value in overrides.items():
        cfg.data[key] = value
    kwargs = OmegaConf.to_container(cfg.data, resolve=True)
    return kwargs.pop("_target_"), kwargs


def mnist_module(data_dir: Path, **overrides) -> MNISTDataModule:
    overrides = {"data_dir": str(data_dir), "seed": 0, "val_size": 100, **overrides}
    target, kwargs = data_kwargs("mnist", download=False, **overrides)
    assert target == "litlab.data.MNISTDataModule"
    assert kwargs["download"] is False
    return MNISTDataModule(**kwargs)


# -- exact resume ----------------------------------------------------------------------------
# Dropout and augmentation draw random numbers every step, so a resume that lost the
# generators' state, the data order or a metric's partial sums would show in the results.
EXACT = [
    *TINY_MNIST,
    "model=mlp_dropout",
    "model.hidden_sizes=[32]",
    "data.augment=true",
    "scheduler=step",
    "scheduler.step_size=1",
    "trainer.deterministic=true",
    "trainer.max_epochs=4",
]


def final_state(run_dir: Path, metrics: dict[str, float]) -> tuple[dict, dict, dict]:
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    results = {k: v for k, v in metrics.items() if not k.startswith("time/")}
    return last["state_dict"], last["optimizer_states"][0]["state"], results


def assert_same(resumed: tuple[dict, dict, dict], straight: tuple[dict, dict, dict]) -> None:
    weights, optimizer, metrics = resumed
    assert weights.keys() == straight[0].keys()
    for name, tensor in weights.items():
        assert torch.equal(tensor, straight[0][name]), name
    for index, state in optimizer.items():
        for key, tensor in state.items():
            assert torch.equal(tensor, straight[1][index][key]), (index, key)
    assert metrics == straight[2]  # exact floats: val/acc_best, test/acc, train/loss, ...


# -- claims ----------------------------------------------------------------------------------
def claim(name: str, value: float, *, above: float | None = None, below: float | None = None):
    """Assert a measured outcome (an accuracy, a gradient ratio, a dead-unit share) lies
    beyond its bound: ``value > above`` and/or ``value < below``. Each bound is set outside
    what the outcome does when the floating-point path changes (another CPU's kernels, one
    thread, oneDNN off); scripts/claims.py reruns the claims under such paths and reads the
    values recorded here to print each claim's margin."""
    assert above is not None or below is not None, f"{name}: a claim needs a bound"
    log = os.environ.get("LITLAB_CLAIMS_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
        row = {"test": test, "claim": name, "value": value, "above": above, "below": below}
        with open(log, "a") as file:  # one short line per write: safe across processes
            file.write(json.dumps(row) + "\n")
    if above is not None:
        assert value > above, f"{name}: {value} is not above {above}"
    if below is not None:
        assert value < below, f"{name}: {value} is not below {below}"


# -- a user's own data ------------------------------------------------------------------------
EXAMPLES = DOCS / "examples"


def make_folder_a_command_reads(command: str, where: Path, real_digits: bool = False) -> bool:
    """A documented command that trains on the reader's own pictures (``data.root=NAME``) gets
    a folder of that name under ``where``: two tiny classes, or real MNIST digits written as
    files (6,000 and 200). Says whether the command reads one."""
    name = re.search(r"data\.root=(\S+)", command)
    if name is None:
        return False
    if real_digits:
        sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
        from mnist_folder import write_folder

        write_folder(where / name.group(1), REAL_DATA_DIR, 6000, 200)
    else:
        make_image_folder(where / name.group(1), per_class=2)
    return True


# The data modules that read a user's files, and their config options.
OWN_DATA = {
    "litlab.data.ImageFolderDataModule": "image_folder",
    "litlab.data.TableDataModule": "table",
}


def own_data_overrides(option: str, tmp_path: Path) -> list[str]:
    """What a data option (or its ``_target_``) that reads a user's files needs given: a small
    folder of pictures, the example table (none for a data set)."""
    option = OWN_DATA.get(option, option)
    if option == "image_folder":
        return [f"data.root={make_image_folder(tmp_path / 'pictures')}"]
    if option == "table":
        return [f"data.path={EXAMPLES / 'wines.csv'}", "data.target=cultivar"]
    return []


def draw(side: str, rng: np.random.Generator, mode: str, size: tuple[int, int]) -> Image.Image:
    """A bright bar on the left or the right half of a dark picture, with noise."""
    width, height = size
    pixels = rng.integers(0, 60, (height, width)).astype(np.float32)
    left = side == "left"
    pixels[:, : width // 3] += 180 if left else 0
    pixels[:, -width // 3 :] += 0 if left else 180
    grey = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if mode == "I;16":
        return Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    return grey.convert(mode)


MODES = [("L", ".png"), ("RGB", ".jpg"), ("RGBA", ".png"), ("I;16", ".png"), ("RGB", ".webp")]


def make_image_folder(root: Path, per_class: int = 40, seed: int = 0) -> Path:
    """Two classes of pictures of every mode and size, some EXIF-rotated."""
    rng = np.random.default_rng(seed)
    for side in ("left", "right"):
        (root / side).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            mode, suffix = MODES[index % len(MODES)]
            size = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
            draw(side, rng, mode, size).save(root / side / f"{index}{suffix}")
    return root


# -- W&B's own reader of offline runs (dev extra: wandb>=0.31) -------------------------------
WANDB = Path(sys.executable).parent / "wandb"


def _leet_inspect(offline_run: Path, *options: str) -> str:
    result = subprocess.run(
        [str(WANDB), "leet", "inspect", "--json", *options, str(offline_run)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def inspect_wandb_run(offline_run: Path) -> dict:
    """W&B's own summary of an offline run: state, exit code, config, latest metrics."""
    return json.loads(_leet_inspect(offline_run, "--summary"))


def logged_wandb_steps(offline_run: Path) -> list[int]:
    """The trainer steps of the run's history rows, from the records of its .wandb file."""
    records = [json.loads(line) for line in _leet_inspect(offline_run).splitlines() if line]
    rows = [record["history"]["item"] for record in records if record["type"] == "history"]
    return [row["trainer/global_step"] for row in rows]
