"""The activation functions litlab's models offer by name (``model.activation``), and that the
training diagnostics watch."""

from torch import nn

from litlab.models.checks import ArgumentError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "prelu": nn.PReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}
ACTIVATION_TYPES = tuple(ACTIVATIONS.values())


def activation_layer(name: str) -> nn.Module:
    """A fresh activation module by its name (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ArgumentError(
            "activation",
            name,
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}",
        )
    return ACTIVATIONS[name]()
