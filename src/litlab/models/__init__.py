"""Plain `nn.Module` architectures, usable without Lightning or Hydra."""

from litlab.models.activations import ACTIVATIONS, activation_layer
from litlab.models.cnn import CNN
from litlab.models.mlp import MLP
from litlab.models.perceptron import Perceptron
from litlab.models.simple_nn import SimpleNN

__all__ = ["ACTIVATIONS", "CNN", "MLP", "Perceptron", "SimpleNN", "activation_layer"]
