"""Lightning's Rich model summary, of the network's layers only."""

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count

# The LightningModule's attribute that holds the plain network (SupervisedModule.net).
NETWORK = "net"
COLUMNS = ("Name", "Type", "Params", "In sizes", "Out sizes")


class NetworkSummary(RichModelSummary):
    """``RichModelSummary`` lists every submodule of the LightningModule: with litlab's metric
    collections, 27 rows of which 25 are metric objects without parameters, plus a column of
    zero FLOPs and the count of modules in train mode. This one keeps the network's rows
    (``net`` and its layers to ``max_depth``), their names, types, parameters and shapes.

    Args:
        max_depth: how deep into the network: 1 its direct children, -1 every layer, 0 none.

    Example: ``NetworkSummary(max_depth=2)``; ``callbacks.model_summary=null`` turns it off.
    """

    def __init__(self, max_depth: int = 2, **summarize_kwargs: Any) -> None:
        # Lightning counts depth from the LightningModule, one level above the network
        super().__init__(
            max_depth=max_depth + 1 if max_depth > 0 else max_depth, **summarize_kwargs
        )

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = dict(summary_data)
        kept = [name for name in COLUMNS if name in columns]
        rows = [
            [columns[name][index] for name in kept]
            for index, layer in enumerate(columns["Name"])
            if layer == NETWORK or layer.startswith(f"{NETWORK}.")
        ]
        table = Table(header_style="bold magenta")
        for name in kept:
            table.add_column(name, justify="right" if name != "Name" and name != "Type" else "left")
        for row in rows:
            table.add_row(*row)
        console = get_console()
        console.print(table)
        frozen = total_parameters - trainable_parameters
        console.print(
            f"Parameters: {get_human_readable_count(total_parameters)}"
            + (f" ({get_human_readable_count(frozen)} frozen)" if frozen else "")
            + f", {model_size:.2f} MB"
        )
