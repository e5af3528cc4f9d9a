"""The figures of a run and of a sweep.

Drawn with matplotlib's object API (``Figure`` and the Agg canvas, no pyplot): no global figure
state, no display needed, safe in DDP ranks and sweep workers. The images drawn during training
(the confusion matrices and the image grids) are drawn with Pillow instead:
15-20x faster.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

from litlab.metric_names import TASK_METRICS

# Beyond this many classes the cells are too small for their numbers.
MAX_ANNOTATED_CLASSES = 20
# Classification metrics are shares of the samples, or their means over classes: 0 to 1.
SHARES = frozenset(TASK_METRICS["multiclass"] + TASK_METRICS["binary"])
# A loss whose highest value is this many times its lowest (a diverged run) is drawn on a log
# axis: on a linear one every point but the highest sits on the zero line.
LOG_AXIS_SPAN = 1e3


def render(fig: Figure) -> np.ndarray:
    """The figure as an ``(H, W, 3)`` uint8 RGB array (for TensorBoard's ``add_image``)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path)
    return path


def save_image(image: np.ndarray, path: Path) -> Path:
    """Save an already rendered figure (see :func:`render`) as PNG, without drawing it again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def confusion_matrix_image(
    counts: np.ndarray, class_names: Sequence[str], title: str, scale: int = 1
) -> np.ndarray:
    """Counts (left) and the same matrix normalised per true class (right: its diagonal is each
    class's recall), drawn straight into pixels with Pillow as an ``(H, W, 3)`` uint8 array.
    Written by hand: matplotlib takes 200-300 ms for it on a small CPU, a fifth of a SimpleNN
    epoch on MNIST when drawn every epoch; this takes about 13 ms. Beyond
    ``MAX_ANNOTATED_CLASSES`` the cells are shades only. ``scale=2``: twice the cells and
    letters, for the test's image that the report shows."""
    counts = np.asarray(counts)
    totals = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size, font = len(class_names), ImageFont.load_default(size=11 * scale)
    widest = font.getlength(str(int(counts.max(initial=0))))
    cell = (
        max(30 * scale, int(widest) + 6) if size <= MAX_ANNOTATED_CLASSES else max(1, 600 // size)
    )
    columns = [str(name) for name in class_names]
    if max((font.getlength(name) for name in columns), default=0) > cell - 2:
        columns = [str(index) for index in range(size)]  # rows then say which is which
    rows = [
        name if name == str(index) or columns[index] == name else f"{name} {index}"
        for index, name in enumerate(map(str, class_names))
    ]
    panels = (counts, "counts"), (normalised, "share of the true class")
    margin = int(max((font.getlength(name) for name in rows), default=0)) + 8
    top, side = 44 * scale, cell * size
    width = max(side, *(int(font.getlength(name)) + 4 for _, name in panels))
    title = f"{title} (rows: true class, columns: predicted)"
    canvas = max(2 * (margin + width) + 30, int(font.getlength(title)) + 16)
    image = Image.new("RGB", (canvas, top + side + 24 * scale), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 4), title, fill="black", font=font)
    for panel, (values, name) in enumerate(panels):
        left = 10 + panel * (margin + width + 10) + margin
        draw.text((left, 22 * scale), name, fill="black", font=font)
        shades = colormaps["Blues"](values / (values.max() or 1), bytes=True)[..., :3]
        image.paste(Image.fromarray(shades.repeat(cell, 0).repeat(cell, 1)), (left, top))
        if size > MAX_ANNOTATED_CLASSES:
            continue
        for index in range(size):
            draw.text((left - 4, top + (index + 0.5) * cell), rows[index], "black", font, "rm")
            draw.text(
                (left + (index + 0.5) * cell, top + side + 4), columns[index], "black", font, "ma"
            )
        threshold = values.max() / 2
        for (row, col), value in np.ndenumerate(values):
            if values is normalised and value < 0.005:
                continue
            text = str(int(value)) if values is counts else f"{value:.2f}".removeprefix("0")
            colour = "white" if value > threshold else "black"
            at = (left + (col + 0.5) * cell, top + (row + 0.5) * cell)
            draw.text(at, text, fill=colour, font=font, anchor="mm")
    return np.asarray(image)


def learning_curves_figure(history: Sequence[dict[str, float]], metric: str) -> Figure:
    """Train and validation loss (left) and ``metric`` (e.g. ``acc``, right) per epoch. One
    epoch is a marker per curve, on an axis from 0 and under a note that says so."""
    epochs = sorted({int(row["epoch"]) for row in history})
    one_epoch = len(epochs) == 1
    fig = Figure(figsize=(10, 4), dpi=80)
    top = 0.84 if one_epoch else 0.92
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=top, wspace=0.2)
    for ax, name in zip(fig.subplots(1, 2), ("loss", metric), strict=True):
        values: list[float] = []
        for stage, style in (("train", "o-"), ("val", "s-")):
            points = [
                (row["epoch"], row[f"{stage}/{name}"])
                for row in history
                if np.isfinite(row.get(f"{stage}/{name}", np.nan))
            ]
            if points:
                x, y = zip(*points, strict=True)
                size = 8 if one_epoch else 4
                ax.plot(x, y, style, label=f"{stage}/{name}", markersize=size)
                values += y
        _value_axis(ax, name, values, one_epoch)
        ax.set_xlabel("epoch")
        if one_epoch:  # matplotlib would span epoch 0 ± 0.055
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if values:  # an empty legend is a warning
            ax.legend()
    if one_epoch:
        fig.suptitle(
            f"One epoch only (epoch {epochs[0]}): a point per curve, no trend yet. "
            "Train longer (trainer.max_epochs) for curves."
        )
    return fig


def _value_axis(ax: Axes, name: str, values: Sequence[float], one_epoch: bool) -> None:
    """Where the values span no range (one epoch, a flat curve), matplotlib would invent one of
    about ± 5 % around them (± 0.045 at 0.9): the axis runs from 0 instead, to 1 for a share
    such as accuracy. A loss that spans orders of magnitude (a diverged run) gets a log axis."""
    if not values:
        return
    low, high = min(values), max(values)
    if name == "loss" and low > 0 and high / low > LOG_AXIS_SPAN:
        ax.set_yscale("log")
        ax.set_ylabel("log scale")
    elif one_epoch or low == high:
        if name in SHARES and 0 <= low <= high <= 1:
            ax.set_ylim(0, 1.05)  # above 1: a marker at 1.0 is drawn whole
        else:
            ax.set_ylim(min(0.0, 1.1 * low), max(0.0, 1.1 * high) or 1.0)


def per_class_figure(class_names: Sequence[str], values: Sequence[float], name: str) -> Figure:
    """A bar per class, e.g. the test F1 of each digit."""
    fig = Figure(figsize=(max(5.0, 0.45 * len(class_names) + 2), 3.5), dpi=80, layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(range(len(values)), values, color="tab:blue")
    ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(range(len(values)), class_names, rotation=90 if len(values) > 10 else 0)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("class")
    ax.set_ylabel(name)
    ax.set_title(f"{name} per class")
    return fig


def predicted_vs_true_figure(true: np.ndarray, predicted: np.ndarray) -> Figure:
    fig = Figure(figsize=(5, 5), dpi=80, layout="constrained")
    ax = fig.subplots()
    ax.scatter(true, predicted, s=6, alpha=0.5)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("test set: predicted vs true")
    ax.legend()
    return fig


def residuals_figure(true: np.ndarray, predicted: np.ndarray) -> Figure:
    """Residuals against the prediction (structure there means a missed pattern) and their
    distribution."""
    residuals = predicted - true
    fig = Figure(figsize=(10, 4), dpi=80, layout="constrained")
    scatter, histogram = fig.subplots(1, 2)
    scatter.scatter(predicted, residuals, s=6, alpha=0.5)
    scatter.axhline(0, color="k", linestyle="--", linewidth=1)
    scatter.set_xlabel("predicted")
    scatter.set_ylabel("predicted - true")
    scatter.set_title("residuals")
    histogram.hist(residuals, bins=40)
    histogram.set_xlabel("predicted - true")
    histogram.set_title("distribution of residuals")
    return fig


def image_grid(images: np.ndarray, labels: Sequence[str], title: str) -> np.ndarray:
    """``images`` ``(N, C, H, W)`` in any range, each scaled to its own min..max, tiled eight to
    a row and drawn three times their size with a label above each, as an ``(H, W, 3)`` uint8
    array. Images smaller than 28 pixels are enlarged, so that their labels fit above them.
    Drawn with Pillow: 10 ms where matplotlib took 150 ms at every run's first step."""
    count, channels, height, width = images.shape
    zoom = 3 * max(1, -(-28 // max(height, width)))
    height, width = height * zoom, width * zoom
    columns = min(8, count)
    rows = -(-count // columns)
    gap, label, top = 6, 16, 22  # pixels between tiles, above each for its label, for the title
    cell_h, cell_w = height + gap + label, width + gap
    font = ImageFont.load_default(size=11)
    canvas_width = max(columns * cell_w, int(font.getlength(title)) + 8)
    canvas = Image.new("RGB", (canvas_width, top + rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), title, fill="black", font=font)
    for index, (image, text) in enumerate(zip(images, labels, strict=False)):
        image = np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = image.min(), image.max()
        tile = (image - low) / (high - low if high > low else 1)
        while font.getlength(text) > width and len(text) > 2:  # no overlap with the next
            text = text[:-2] + "…"
        pixels = (tile.transpose(1, 2, 0) * 255).round().astype(np.uint8)
        tile_image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
        tile_image = tile_image.resize((width, height), Image.Resampling.NEAREST)
        left, row_top = (index % columns) * cell_w, top + (index // columns) * cell_h
        canvas.paste(tile_image.convert("RGB"), (left, row_top + label))
        at = (left + width / 2, row_top + label - 2)
        draw.text(at, text, fill="crimson", font=font, anchor="md")
    return np.asarray(canvas)


def gradient_by_step_figure(norms: Sequence[float], epoch: int) -> Figure:
    """The size of the loss's gradient at each time step's input: flat for a network that
    carries information across the sequence, falling towards the early steps where it vanishes."""
    fig = Figure(figsize=(7, 3.6), dpi=80, layout="constrained")
    ax = fig.subplots()
    steps = np.arange(1, len(norms) + 1)
    ax.plot(steps, norms, marker="o", markersize=2, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("time step (1 = first input)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("|d loss / d input|")
    ax.set_title(f"gradient reaching each time step, after epoch {epoch}")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def sweep_figure(
    labels: Sequence[str],
    values: Sequence[float],
    metric: str,
    errors: Sequence[float] | None = None,
) -> Figure:
    """One horizontal bar per job, best first; failed jobs (NaN) are listed without a bar.
    With ``errors`` (standard deviations), one bar per group of seeds with its error bar."""
    fig = Figure(figsize=(8, 2.2 + 0.35 * len(labels)), dpi=80, layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(labels))[::-1]
    finite = [value if np.isfinite(value) else 0.0 for value in values]
    spreads = None if errors is None else [e if np.isfinite(e) else 0.0 for e in errors]
    bars = ax.barh(positions, finite, color="tab:blue", xerr=spreads, capsize=4)
    texts = [f"{v:.4g}" if np.isfinite(v) else "failed" for v in values]
    if errors is not None:
        texts = [
            t + (f" ± {e:.2g}" if np.isfinite(e) else "")
            for t, e in zip(texts, errors, strict=True)
        ]
    ax.bar_label(bars, labels=texts, padding=6 if errors is not None else 3)
    ax.set_yticks(positions, [_short(label) for label in labels], fontsize=8)
    reach = [
        end
        for value, spread in zip(values, spreads or [0] * len(values), strict=True)
        if np.isfinite(value)
        for end in (value - (spread or 0), value + (spread or 0))
    ]
    # From zero, as bars must: cut short, a bar of 0.97 looks several times one of 0.96. Jobs
    # that differ in the second decimal are told apart by the numbers beside their bars.
    low, high = min([0.0, *reach]), max([0.0, *reach])
    room = 0.3 * (high - low) or 1.0  # for those numbers
    ax.set_xlim(low - room if low < 0 else 0.0, high + room if high > 0 or low == 0 else 0.0)
    ax.set_xlabel(metric)
    ax.set_title(
        f"sweep: {metric}, " + ("mean ± std over seeds" if errors is not None else "per job")
    )
    return fig


def pareto_figure(
    points: Sequence[Sequence[float]],
    front: Sequence[Sequence[float]],
    objectives: Sequence[tuple[str, str]],
) -> Figure:
    """The finished jobs of a search of several objectives on its first two, the Pareto front
    highlighted and joined in the order of the first objective."""
    fig = Figure(figsize=(6.5, 4.8), dpi=80, layout="constrained")
    ax = fig.subplots()
    (x_name, x_mode), (y_name, y_mode) = objectives[0], objectives[1]
    everything = np.array([p[:2] for p in points], dtype=float).reshape(-1, 2)
    best = np.array(sorted(p[:2] for p in front), dtype=float).reshape(-1, 2)
    ax.scatter(everything[:, 0], everything[:, 1], color="tab:gray", alpha=0.6, label="trials")
    ax.plot(best[:, 0], best[:, 1], "o-", color="tab:red", label="Pareto front")
    better = {"max": "higher is better", "min": "lower is better"}
    ax.set_xlabel(f"{x_name} ({better.get(x_mode, x_mode)})")
    ax.set_ylabel(f"{y_name} ({better.get(y_mode, y_mode)})")
    ax.set_title(f"Pareto front: {len(best)} of {len(everything)} finished trials")
    ax.legend()
    return fig


LABEL_CHARACTERS = 48  # an Optuna trial's overrides run to 150: the bars would get no width


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"


def lr_find_figure(
    learning_rates: Sequence[float], losses: Sequence[float], suggestion: float | None
) -> Figure:
    """The learning-rate range test: smoothed training loss against the rate (log axis), the
    suggestion (steepest descent) marked."""
    fig = Figure(figsize=(7, 4.5), dpi=80, layout="constrained")
    ax = fig.subplots()
    rates, values = np.asarray(learning_rates, float), np.asarray(losses, float)
    ax.plot(rates, values, color="tab:blue")
    ax.set_xscale("log")
    finite = values[np.isfinite(values)]
    if len(finite):  # the diverging tail would squash the interesting part
        ax.set_ylim(finite.min() - 0.05 * np.ptp(finite), min(finite.max(), 4 * finite[0]))
    if suggestion is not None:
        at = int(np.argmin(np.abs(rates - suggestion)))
        ax.plot([rates[at]], [values[at]], "o", color="crimson", markersize=9)
        ax.axvline(suggestion, color="crimson", linestyle="--", linewidth=1)
        ax.annotate(
            f"suggested lr {suggestion:.3g}",
            (rates[at], values[at]),
            textcoords="offset points",
            xytext=(10, 12),
            color="crimson",
        )
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("learning-rate finder")
    ax.grid(alpha=0.3, which="both")
    return fig
