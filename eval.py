"""Evaluate a checkpoint with the config it was trained with.

    python eval.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt
"""

from litlab.evaluate import main

if __name__ == "__main__":
    main()
