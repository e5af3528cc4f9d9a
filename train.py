"""Train a model: `python train.py [overrides]`, e.g. `python train.py model=cnn`."""

from litlab.cli import train_main as main

if __name__ == "__main__":
    main()
