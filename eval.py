"""Evaluate a checkpoint with the config it was trained with.

    python eval.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt
"""

from litlab.cli import eval_main as main

if __name__ == "__main__":
    main()
