"""Export a trained model to ONNX (or torch.export's .pt2), checked on the test split.

    python export.py ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt format=onnx
"""

from litlab.cli import export_main as main

if __name__ == "__main__":
    main()
