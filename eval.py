"""Evaluate a checkpoint: `python eval.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt`."""

from litlab.evaluate import main

if __name__ == "__main__":
    main()
