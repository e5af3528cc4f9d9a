"""The activation functions litlab's models offer by name (``model.activation``), and that the
training diagnostics watch."""

from typing import Annotated

from torch import nn

from litlab.config.domains import one_of

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
# A model argument naming one of them.
Activation = Annotated[str, one_of(*ACTIVATIONS)]


def activation_layer(name: str) -> nn.Module:
    """A fresh activation module by its name (one of ``ACTIVATIONS``)."""
    return ACTIVATIONS[name]()
