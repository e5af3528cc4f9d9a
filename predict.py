"""Predict your own files with a trained model.

    python predict.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt inputs=my_digit.png
"""

from litlab.cli import predict_main as main

if __name__ == "__main__":
    main()
