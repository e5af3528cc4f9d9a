"""`bench.py --whole-run`: what a user waits for. Complete `python train.py` commands of 1 and N
epochs, run in a pseudo-terminal (the progress bar draws as it does for a user), against a raw
loop that trains one epoch and evaluates the validation split once; then the N-epoch command
with each default callback, and the logger, turned off one at a time: what each costs per epoch.
Also the start-up: launch to the first training step, split into imports and litlab's own work.

Batch sizes, learning rate and split sizes come from the composed config. Repetitions are
interleaved (raw, default, each variant, then again), figures are medians of one run.
"""

import json
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_clock import epoch_seconds
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torchvision.datasets import MNIST

from litlab import PROJECT_ROOT
from litlab.config import compose_config
from litlab.data.base import split_count

SCRIPTS = Path(__file__).resolve().parent


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# -- the raw reference -------------------------------------------------------------------------
@dataclass
class RawReference:
    """One epoch of training and one pass over the validation split, by hand, on normalised
    tensors in memory, with the composed config's model, optimizer and sizes."""

    cfg: DictConfig
    device: str
    data: tuple[torch.Tensor, ...] = field(init=False)

    def __post_init__(self) -> None:
        mnist = MNIST(self.cfg.data.data_dir, train=True, download=True)
        images = (mnist.data.float() / 255 - self.cfg.data.mean) / self.cfg.data.std
        images, labels = images.unsqueeze(1).to(self.device), mnist.targets.to(self.device)
        val = split_count("data.val_size", self.cfg.data.val_size, len(images))
        self.data = (images[:-val], labels[:-val], images[-val:], labels[-val:])
        self.epoch()  # warm-up: allocator, kernels

    def epoch(self) -> float:
        model_cfg = OmegaConf.to_container(self.cfg.model, resolve=True)
        model_cfg.pop("compile", None)
        channels_last = model_cfg.pop("channels_last", False)  # as litlab: like with like
        model = instantiate(model_cfg).to(self.device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = instantiate(self.cfg.optimizer)(params=model.parameters())
        train_x, train_y, val_x, val_y = self.data
        sync(self.device)
        start = time.perf_counter()
        model.train()
        for batch in torch.randperm(len(train_x), device=self.device).split(
            self.cfg.data.batch_size
        ):
            loss = F.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = torch.zeros((), device=self.device)
        with torch.no_grad():
            for inputs, targets in zip(
                val_x.split(self.cfg.data.eval_batch_size),
                val_y.split(self.cfg.data.eval_batch_size),
                strict=True,
            ):
                correct += (model(inputs).argmax(1) == targets).sum()
        correct.item()
        sync(self.device)
        return time.perf_counter() - start


# -- train.py commands -------------------------------------------------------------------------
@dataclass
class Command:
    seconds: float  # launch to exit
    stamps: dict  # bench_clock's
    launched: float
    stderr: str = ""


def run_train(overrides: list[str], workdir: Path, tag: str, import_times: bool = False):
    """Run `python train.py` in a pseudo-terminal; return its wall time and clock stamps."""
    run_dir = workdir / tag
    clock = workdir / f"{tag}.clock.json"
    args = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        *overrides,
        f"hydra.run.dir={run_dir}",
        "+callbacks.bench_clock._target_=bench_clock.EpochClock",
        f"+callbacks.bench_clock.path={clock}",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")]),
    }
    if import_times:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    leader, follower = pty.openpty()
    stderr_file = workdir / f"{tag}.stderr"
    with stderr_file.open("w") as stderr:
        launched = time.time()
        process = subprocess.Popen(args, stdout=follower, stderr=stderr, env=env, cwd=PROJECT_ROOT)
        os.close(follower)
        drained: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(leader, drained), daemon=True)
        reader.start()
        status = process.wait()
        seconds = time.time() - launched
        reader.join(timeout=5)
    os.close(leader)
    if status != 0 or not clock.exists():
        tail = b"".join(drained).decode(errors="replace")[-3000:]
        raise RuntimeError(f"train.py {' '.join(overrides)} failed ({status}):\n{tail}")
    return Command(seconds, json.loads(clock.read_text()), launched, stderr_file.read_text())


def _drain(fd: int, into: list[bytes]) -> None:
    """Read the terminal's output as a terminal would (a full pty blocks the writer)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not chunk:
            return
        into.append(chunk)


# -- start-up ---------------------------------------------------------------------------------
def import_seconds(importtime_log: str) -> tuple[float, float]:
    """Seconds spent importing modules (from -X importtime's self times): libraries, litlab."""
    libraries = own = 0.0
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if name.strip().split(".")[0] == "litlab":
            own += int(self_us) / 1e6
        else:
            libraries += int(self_us) / 1e6
    return libraries, own


def startup_split(command: Command) -> dict[str, float]:
    stamps = command.stamps
    to_first_step = stamps["first_step"] - command.launched
    libraries, own_imports = import_seconds(command.stderr)
    return {
        "to_first_step_s": to_first_step,
        "library_imports_s": libraries,
        "litlab_imports_s": own_imports,
        "litlab_work_s": to_first_step - libraries,
        "launch_to_setup_s": stamps["setup"] - command.launched,
        "sanity_check_s": stamps.get("sanity_end", 0) - stamps.get("sanity_start", 0),
    }


# -- where the time goes, in one run -----------------------------------------------------------
def callback_seconds(base: list[str], epochs: int, workdir: Path, tag: str) -> dict[str, float]:
    """Seconds per epoch inside each callback's hooks (and the logger's writes), from Lightning's
    SimpleProfiler in one N-epoch run: immune to the drift between runs, unlike turning each
    off, but the profiler's own bookkeeping (a few us per hook) is not counted anywhere."""
    profiler = "lightning.pytorch.profilers.SimpleProfiler"
    overrides = [
        *base,
        f"trainer.max_epochs={epochs}",
        f"+trainer.profiler._target_={profiler}",
        f"+trainer.profiler.dirpath={workdir / tag}",
        "+trainer.profiler.filename=profile",
    ]
    run_train(overrides, workdir, tag)
    totals: dict[str, float] = {}
    for line in (workdir / tag / "fit-profile.txt").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("[Callback]"):
            continue
        name = cells[0].removeprefix("[Callback]").split("{")[0].rsplit(".", 1)[0]
        totals[name] = totals.get(name, 0.0) + float(cells[3])
    return {name: total / epochs for name, total in sorted(totals.items(), key=lambda i: -i[1])}


# -- the benchmark ----------------------------------------------------------------------------
def variants(cfg: DictConfig) -> dict[str, list[str]]:
    """Each default callback (and the logger) turned off on its own."""
    off = {
        f"no {name}": [f"callbacks.{name}=null"]
        for name, node in (cfg.callbacks or {}).items()
        if node
    }
    return {"default": [], **off, "no logger": ["logger=none"]}


def schedule(names: list[str]) -> list[str]:
    """Default runs between every two variants (D v1 v2 D v3 v4 D ...): each variant is compared
    with the default runs beside it in time, as this VM's speed drifts within minutes."""
    order = ["default"]
    for start in range(0, len(names), 2):
        order += [*names[start : start + 2], "default"]
    return order


def whole_run(model: str, args, workdir: Path) -> dict:
    base = [f"model={model}", f"paths.data_dir={args.data_dir}", *args.overrides]
    if args.device == "cuda":
        base.append("trainer.accelerator=gpu")
    cfg = compose_config(base, workdir / "composed")
    raw = RawReference(cfg, args.device)
    plan = variants(cfg) if args.itemise else {"default": []}
    order = schedule([name for name in plan if name != "default"])
    n = args.epochs
    raw_s, one_s, n_s, startup = [], [], [], []
    per_epoch: dict[str, list[float]] = {name: [] for name in plan}
    savings: dict[str, list[float]] = {name: [] for name in plan if name != "default"}
    for rep in range(args.reps):
        raw_s.append(raw.epoch())
        first = run_train([*base, "trainer.max_epochs=1"], workdir, f"{model}_1_{rep}")
        one_s.append(first.seconds)
        startup.append(first.stamps["first_step"] - first.launched)
        medians = []
        for position, name in enumerate(order):
            tag = f"{model}_{position}_{name.replace(' ', '_')}_{rep}"
            command = run_train([*base, f"trainer.max_epochs={n}", *plan[name]], workdir, tag)
            measured = epoch_seconds(command.stamps)[1:]  # the first has one-time work
            per_epoch[name] += measured
            medians.append(statistics.median(measured))
            if name == "default":
                n_s.append(command.seconds)
                raw_s.append(raw.epoch())
            print(f"  {model} rep {rep + 1}: {name:<24} {medians[-1]:.3f} s/epoch", flush=True)
        for position, name in enumerate(order):
            if name != "default":
                before = max(i for i in range(position) if order[i] == "default")
                after = min(i for i in range(position, len(order)) if order[i] == "default")
                beside = (medians[before] + medians[after]) / 2
                savings[name].append(beside - medians[position])
    profiled = run_train(
        [*base, "trainer.max_epochs=1"], workdir, f"{model}_importtime", import_times=True
    )
    attributed = callback_seconds(base, n, workdir, f"{model}_profiled")
    raw_epoch = statistics.median(raw_s)
    n_median = statistics.median(n_s)
    whole = (n_median - statistics.median(one_s)) / (n - 1)
    epochs = {name: statistics.median(values) for name, values in per_epoch.items()}
    return {
        "model": model,
        "raw_train_validate_s": raw_epoch,
        "command_1_epoch_s": statistics.median(one_s),
        f"command_{n}_epochs_s": n_median,
        "whole_run_epoch_s": whole,
        "whole_run_vs_raw": whole / raw_epoch,
        "clock_epoch_s": epochs["default"],
        "clock_vs_raw": epochs["default"] / raw_epoch,
        "per_epoch_s": epochs,
        "saves_per_epoch_s": {name: statistics.median(v) for name, v in savings.items()},
        "profiled_per_epoch_s": attributed,
        "to_first_step_s": statistics.median(startup),
        "startup": startup_split(profiled),
        "config": {
            "batch_size": cfg.data.batch_size,
            "eval_batch_size": cfg.data.eval_batch_size,
            "lr": cfg.optimizer.lr,
            "val_size": cfg.data.val_size,
            "epochs": n,
            "reps": args.reps,
        },
    }


def print_whole_run(result: dict) -> None:
    n = result["config"]["epochs"]
    print(
        f"\n{result['model']}: raw train+validate epoch {result['raw_train_validate_s']:.3f} s; "
        f"train.py 1 epoch {result['command_1_epoch_s']:.2f} s, {n} epochs "
        f"{result[f'command_{n}_epochs_s']:.2f} s -> {result['whole_run_epoch_s']:.3f} s per "
        f"epoch = {result['whole_run_vs_raw']:.2f}x raw (epoch clock: "
        f"{result['clock_epoch_s']:.3f} s = {result['clock_vs_raw']:.2f}x)"
    )
    if result["saves_per_epoch_s"]:
        print(f"{'turned off':<26} {'s/epoch':>8} {'saves':>8} {'of raw':>7}")
        print(f"{'(nothing: default)':<26} {result['per_epoch_s']['default']:>8.3f}")
        for name, saved in result["saves_per_epoch_s"].items():
            print(
                f"{name:<26} {result['per_epoch_s'][name]:>8.3f} {saved:>+8.3f} "
                f"{saved / result['raw_train_validate_s']:>+7.0%}"
            )
    print("inside each callback's hooks (SimpleProfiler, one run, s/epoch):")
    for name, seconds in result["profiled_per_epoch_s"].items():
        if seconds >= 0.001:
            print(f"  {name:<28} {seconds:.3f}")
    s = result["startup"]
    print(
        f"start-up to the first step: {result['to_first_step_s']:.2f} s (median); under "
        f"-X importtime {s['to_first_step_s']:.2f} s = library imports "
        f"{s['library_imports_s']:.2f} s + litlab's own work {s['litlab_work_s']:.2f} s "
        f"(its imports {s['litlab_imports_s']:.2f} s, sanity check {s['sanity_check_s']:.2f} s)"
    )


def main(args) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for model in args.models:
            result = whole_run(model, args, Path(workdir))
            print_whole_run(result)
            results.append(result)
    return results
