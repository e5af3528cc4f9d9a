"""Plain `nn.Module` architectures, usable without Lightning or Hydra."""

from litlab.models.activations import ACTIVATIONS, activation_layer
from litlab.models.cnn import CNN
from litlab.models.mlp import MLP
from litlab.models.perceptron import Perceptron
from litlab.models.resnet import ResNet
from litlab.models.rnn import RNN
from litlab.models.simple_nn import SimpleNN
from litlab.models.transformer import Transformer

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "MLP",
    "RNN",
    "ResNet",
    "Perceptron",
    "SimpleNN",
    "Transformer",
    "activation_layer",
]
