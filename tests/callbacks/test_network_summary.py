"""NetworkSummary: Lightning's Rich summary, of the network's layers only."""

from lightning.pytorch.utilities.model_summary import summarize

from litlab.build import build_module
from litlab.callbacks import NetworkSummary


def printed_summary(module, max_depth: int, capsys) -> str:
    callback = NetworkSummary(max_depth=max_depth)
    summary = summarize(module, max_depth=callback._max_depth)
    callback.summarize(
        summary._get_summary_data(),
        summary.total_parameters,
        summary.trainable_parameters,
        summary.model_size,
        summary.total_training_modes,
        total_flops=0,
    )
    return capsys.readouterr().out


def test_the_summary_lists_the_networks_layers_and_no_metric_objects(make_config, capsys):
    module = build_module(make_config("model=mlp", "model.hidden_sizes=[32]"))
    text = printed_summary(module, 2, capsys)
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == [
        "net",
        "net.layers",
        *(f"net.layers.{index}" for index in range(4)),  # flatten, linear, relu, linear
    ]
    assert "metrics" not in text and "FLOPs" not in text and "Mode" not in text
    assert "Parameters: 25.4 K, 0.10 MB" in text  # 784*32+32 + 32*10+10 = 25,450


def test_depth_counts_from_the_network(make_config, capsys):
    module = build_module(make_config("model=mlp", "model.hidden_sizes=[32]"))
    rows = [line for line in printed_summary(module, 1, capsys).splitlines() if "│" in line]
    assert [row.split("│")[1].strip() for row in rows] == ["net", "net.layers"]
