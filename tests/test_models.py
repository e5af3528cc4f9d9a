"""The plain nn.Module architectures: parameter counts, shapes, layers and argument checks."""

import pytest
import torch
from torch import nn

from litlab.config.domains import ArgumentError
from litlab.models import ACTIVATIONS, CNN, MLP, RNN, Perceptron, ResNet, SimpleNN, Transformer


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layers_of(model: nn.Module, cls: type[nn.Module]) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) is cls]


# --- SimpleNN ---------------------------------------------------------------------------------


def test_simple_nn_parameter_count():
    assert num_params(SimpleNN()) == 203_530


def test_simple_nn_accepts_images_and_flat_vectors():
    torch.manual_seed(0)
    model = SimpleNN().eval()
    images = torch.randn(5, 1, 28, 28)
    out_images = model(images)
    out_flat = model(images.reshape(5, 784))
    assert out_images.shape == (5, 10)
    assert out_flat.shape == (5, 10)
    torch.testing.assert_close(out_images, out_flat)


# --- MLP --------------------------------------------------------------------------------------


def test_mlp_dropout_parameter_count_and_shape():
    model = MLP(784, [128, 64], 10, dropout=0.2)
    assert num_params(model) == 109_386
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    linears = layers_of(model, nn.Linear)
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 64), (64, 10)]


def test_mlp_dropout_layers():
    dropouts = layers_of(MLP(784, [128, 64], 10, dropout=0.2), nn.Dropout)
    assert len(dropouts) == 2
    assert all(m.p == pytest.approx(0.2) for m in dropouts)
    assert layers_of(MLP(784, [128, 64], 10), nn.Dropout) == []


def test_mlp_batch_norm_adds_one_layer_per_hidden_layer():
    assert layers_of(MLP(20, [32, 16], 3), nn.BatchNorm1d) == []
    model = MLP(20, [32, 16], 3, batch_norm=True)
    norms = layers_of(model, nn.BatchNorm1d)
    assert [m.num_features for m in norms] == [32, 16]
    # Each BatchNorm1d adds a weight and a bias per feature.
    assert num_params(model) == num_params(MLP(20, [32, 16], 3)) + 2 * (32 + 16)
    model.train()
    assert model(torch.randn(8, 20)).shape == (8, 3)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_mlp_every_activation_builds_and_runs(name):
    torch.manual_seed(0)
    model = MLP(6, [8, 8, 8], 2, activation=name)
    assert len(layers_of(model, ACTIVATIONS[name])) == 3
    others = {cls for other, cls in ACTIVATIONS.items() if other != name}
    assert not [m for m in model.modules() if type(m) in others]
    out = model(torch.randn(4, 6))
    assert out.shape == (4, 2)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("init", "variance"), [("he", lambda i, o: 2 / i), ("xavier", lambda i, o: 2 / (i + o))]
)
def test_mlp_init_sets_the_weights_spread_and_zero_biases(init, variance):
    torch.manual_seed(0)
    model = MLP(400, [300, 200], 10, init=init)
    for layer in layers_of(model, nn.Linear):
        expected = variance(layer.in_features, layer.out_features)
        assert layer.weight.var().item() == pytest.approx(expected, rel=0.05)
        assert not layer.bias.any()


def test_mlp_without_init_keeps_pytorchs_default():
    torch.manual_seed(0)
    weight = layers_of(MLP(400, [300], 10), nn.Linear)[0].weight
    assert weight.abs().max() <= 1 / 400**0.5  # uniform(+-1/sqrt(fan_in))
    assert weight.var().item() == pytest.approx(1 / (3 * 400), rel=0.05)


def test_mlp_unknown_init_names_the_choices():
    with pytest.raises(ArgumentError, match="he or xavier"):
        MLP(4, [8], 2, init="glorot")


def test_activations_cover_the_documented_names():
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "elu", "prelu", "gelu", "sigmoid", "tanh"}


# --- CNN --------------------------------------------------------------------------------------


def test_cnn_default_is_lenet5():
    model = CNN(input_shape=[1, 28, 28], out_features=10)
    assert num_params(model) == 61_706
    convs = layers_of(model, nn.Conv2d)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 6, (5, 5), (2, 2)),
        (6, 16, (5, 5), (0, 0)),
    ]
    linears = layers_of(model, nn.Linear)
    assert [(m.in_features, m.out_features) for m in linears] == [(400, 120), (120, 84), (84, 10)]
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_cnn_without_padding():
    model = CNN(input_shape=[1, 28, 28], out_features=10, paddings=[0, 0])
    assert num_params(model) == 44_426
    assert layers_of(model, nn.Linear)[0].in_features == 16 * 4 * 4


def test_cnn_pooling_before_relu_computes_the_same_function():
    torch.manual_seed(0)
    shape = {"input_shape": [1, 28, 28], "out_features": 10, "channels": [16, 32]}
    usual = CNN(**shape, paddings=[0, 0])
    pooled_first = CNN(**shape, paddings=[0, 0], pool_first=True)
    pooled_first.load_state_dict(usual.state_dict())  # same parameters, same names
    assert type(pooled_first.features[1]) is nn.MaxPool2d and type(usual.features[1]) is nn.ReLU
    images = torch.randn(8, 1, 28, 28)
    assert torch.allclose(pooled_first(images), usual(images), atol=1e-6)


def test_cnn_configurable_convolutions():
    model = CNN(
        input_shape=[3, 32, 32],
        out_features=4,
        channels=[8, 12, 20],
        kernel_sizes=[3, 3, 2],
        paddings=[0, 0, 0],
        hidden_sizes=[32],
        dropout=0.5,
    )
    convs = layers_of(model, nn.Conv2d)
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (3, 8, (3, 3)),
        (8, 12, (3, 3)),
        (12, 20, (2, 2)),
    ]
    # 32 -> conv3 30 -> pool 15 -> conv3 13 -> pool 6 -> conv2 5 -> pool 2: 20 * 2 * 2 features.
    first_linear = layers_of(model, nn.Linear)[0]
    assert first_linear.in_features == 20 * 2 * 2
    assert len(layers_of(model, nn.Dropout)) == 1
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_cnn_input_too_small_for_kernels():
    with pytest.raises(ValueError, match=r"kernel sizes \[5, 5\]"):
        CNN(input_shape=[1, 8, 8], out_features=10)
    # The same input is fine with smaller kernels.
    assert CNN(input_shape=[1, 8, 8], out_features=10, kernel_sizes=[3, 2])(
        torch.randn(1, 1, 8, 8)
    ).shape == (1, 10)


def test_cnn_channels_and_kernel_sizes_must_match():
    with pytest.raises(ValueError, match=r"channels.*kernel_sizes.*same length"):
        CNN(input_shape=[1, 28, 28], out_features=10, channels=[6, 16, 32], kernel_sizes=[5, 5])


def test_cnn_input_shape_must_have_three_entries():
    with pytest.raises(ValueError, match="input_shape"):
        CNN(input_shape=[784], out_features=10)


# --- Perceptron -------------------------------------------------------------------------------


def test_perceptron_is_one_linear_layer():
    model = Perceptron(2, 2)
    linears = layers_of(model, nn.Linear)
    assert len(linears) == 1
    assert num_params(model) == 6
    assert model(torch.randn(7, 2)).shape == (7, 2)


# --- Argument checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"hidden_sizes": [0]}, r"hidden_sizes\[0\]"),
        ({"hidden_sizes": [64, -1]}, r"hidden_sizes\[1\]"),
        ({"hidden_sizes": 64}, "hidden_sizes"),
        ({"dropout": 1.5}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"out_features": 0}, "out_features"),
        ({"in_features": 0}, "in_features"),
    ],
)
def test_mlp_bad_arguments_name_the_argument(kwargs, argument):
    args = {"in_features": 784, "hidden_sizes": [64], "out_features": 10, **kwargs}
    with pytest.raises(ValueError, match=argument):
        MLP(**args)


def test_mlp_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="swishy") as info:
        MLP(784, [64], 10, activation="swishy")
    message = str(info.value)
    assert all(name in message for name in ACTIVATIONS)


@pytest.mark.parametrize(
    "build",
    [
        lambda: SimpleNN(out_features=0),
        lambda: Perceptron(2, 0),
        lambda: CNN(input_shape=[1, 28, 28], out_features=0),
    ],
    ids=["simple_nn", "perceptron", "cnn"],
)
def test_zero_out_features_is_rejected(build):
    with pytest.raises(ValueError, match="out_features"):
        build()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"dropout": 1.5}, "dropout"),
        ({"hidden_sizes": [0]}, r"hidden_sizes\[0\]"),
        ({"channels": [6, -1]}, r"channels\[1\]"),
        ({"kernel_sizes": [5, 0]}, r"kernel_sizes\[1\]"),
    ],
)
def test_cnn_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        CNN(input_shape=[1, 28, 28], out_features=10, **kwargs)


# --- Recurrent networks ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cell", "recurrent_params"),
    # per layer: gates x (input weights + hidden weights + 2 biases); LSTM 4 gates, GRU 3
    [("rnn", 1 * (28 * 16 + 16 * 16 + 2 * 16)), ("lstm", 4 * (28 * 16 + 16 * 16 + 2 * 16))],
)
def test_rnn_reads_an_image_one_row_per_step(cell, recurrent_params):
    model = RNN(input_shape=[1, 28, 28], out_features=10, cell=cell, hidden_size=16)
    assert num_params(model.recurrent) == recurrent_params
    assert num_params(model) == recurrent_params + 16 * 10 + 10
    images = torch.randn(3, 1, 28, 28)
    rows = images[:, 0]  # (3, 28 steps, 28 features)
    torch.testing.assert_close(model(images), model(rows))
    assert model(images).shape == (3, 10)


def test_rnn_last_state_reads_the_whole_sequence_and_mean_pool_averages():
    torch.manual_seed(0)
    model = RNN(input_shape=[5, 2], out_features=1, cell="gru", hidden_size=8).eval()
    sequences = torch.randn(4, 5, 2)
    changed = sequences.clone()
    changed[:, 0] += 1.0  # the first step only
    assert not torch.allclose(model(sequences), model(changed))
    mean = RNN(input_shape=[5, 2], out_features=1, cell="gru", hidden_size=8, pool="mean")
    assert mean(sequences).shape == (4, 1)


def test_bidirectional_stacked_rnn_heads_see_both_directions():
    model = RNN(
        [6, 3], 2, cell="lstm", hidden_size=8, num_layers=2, bidirectional=True, dropout=0.2
    )
    assert model.head.in_features == 16 and model.recurrent.dropout == 0.2
    assert model(torch.randn(5, 6, 3)).shape == (5, 2)


def test_lstm_forget_gates_start_open_and_nothing_else_changes():
    shape = {"input_shape": [6, 3], "out_features": 1, "cell": "lstm", "hidden_size": 4}
    shape |= {"num_layers": 2, "bidirectional": True}
    torch.manual_seed(0)
    opened = dict(RNN(**shape).named_parameters())
    torch.manual_seed(0)
    drawn = dict(RNN(**shape, forget_bias=None).named_parameters())  # PyTorch's own draw
    forget = slice(4, 8)  # gates in PyTorch's order: input, forget, cell, output
    for name, parameter in opened.items():
        if name.startswith("recurrent.bias_"):  # every layer and direction
            value = 1.0 if "bias_ih" in name else 0.0
            assert parameter[forget].tolist() == [value] * 4, name
            assert not torch.equal(drawn[name][forget], parameter[forget])
            torch.testing.assert_close(parameter[8:], drawn[name][8:], rtol=0, atol=0)
            torch.testing.assert_close(parameter[:4], drawn[name][:4], rtol=0, atol=0)
        else:
            torch.testing.assert_close(parameter, drawn[name], rtol=0, atol=0)
    for default in (1.0, None):  # a recipe's default may meet another cell
        gru = RNN([6, 3], 1, cell="gru", hidden_size=4, forget_bias=default)
        assert isinstance(gru.recurrent, nn.GRU)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"cell": "lstn"}, "cell"),
        ({"pool": "max"}, "pool"),
        ({"cell": "lstm", "nonlinearity": "relu"}, "nonlinearity"),
        ({"cell": "gru", "forget_bias": 2.0}, "forget_bias"),
        ({"forget_bias": 11.0}, "forget_bias"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"input_shape": [784]}, "input_shape"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_rnn_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ArgumentError) as info:
        RNN(**{"input_shape": [1, 28, 28], "out_features": 10, **kwargs})
    assert info.value.argument == argument


# --- Transformer -------------------------------------------------------------------------------
def test_transformer_cuts_images_into_patches_with_a_class_token():
    model = Transformer([1, 28, 28], 10, dim=32, depth=2, heads=4, patch_size=7)
    assert model.position.shape == (1, 16 + 1, 32)  # 4 x 4 patches and the class token
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    mean = Transformer([1, 8, 8], 10, dim=16, depth=1, heads=2, patch_size=2, pool="mean")
    assert mean.class_token is None and mean.position.shape == (1, 16, 16)
    assert mean(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_transformer_reads_sequences_one_token_per_step():
    model = Transformer([100, 2], 1, dim=16, depth=1, heads=2).eval()
    sequences = torch.randn(3, 100, 2)
    assert model.position.shape == (1, 101, 16)
    torch.testing.assert_close(model(sequences), model(sequences.flatten(1)))
    assert model(sequences).shape == (3, 1)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"patch_size": 5}, "patch_size"),  # 28 is not a multiple of 5
        ({"dim": 64, "heads": 3}, "heads"),
        ({"pool": "max"}, "pool"),
        ({"mlp_ratio": 0}, "mlp_ratio"),
        ({"input_shape": None}, "input_shape"),
    ],
)
def test_transformer_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ArgumentError) as info:
        Transformer(**{"input_shape": [1, 28, 28], "out_features": 10, **kwargs})
    assert info.value.argument == argument


def test_rnn_dropout_on_one_layer_is_said_not_ignored_silently():
    """torch applies it between layers only; refusing it would stop earlier runs' checkpoints
    from loading, so it is a warning (on the console once, through litlab's filter)."""
    with pytest.warns(UserWarning, match=r"model.dropout=0.5 does nothing with model.num_layers=1"):
        RNN(input_shape=[28, 28], out_features=10, dropout=0.5)
    stacked = RNN(input_shape=[28, 28], out_features=10, num_layers=2, dropout=0.5)
    assert stacked.recurrent.dropout == 0.5


@pytest.mark.parametrize(
    ("shape", "depth"), [((3, 32, 32), 8), ((1, 20, 36), 14), ((3, 128, 96), 8)]
)
def test_resnet_reads_any_image_size_and_channel_count(shape, depth):
    net = ResNet(list(shape), 5, depth=depth)
    assert net(torch.zeros(2, *shape)).shape == (2, 5)


def test_resnet8_has_the_documented_size_and_refuses_other_depths():
    assert sum(p.numel() for p in ResNet([3, 32, 32], 10).parameters()) == 78_042
    with pytest.raises(ArgumentError, match="6n\\+2"):
        ResNet([3, 32, 32], 10, depth=10)


def test_the_cnn_takes_batch_norm_after_each_convolution():
    net = CNN([3, 32, 32], 10, batch_norm=True)
    kinds = [type(layer).__name__ for layer in net.features]
    assert kinds[:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
