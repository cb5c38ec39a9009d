"""Evaluates a trained face-aging generator on a prepared test split (IPCGAN, its cross-age
mode, or a CycleGAN run's young -> old generator), e.g.::

  python evaluate.py --checkpoint_dir=checkpoints/run1 --list_dir=data/utk \\
      --output_dir=eval/run1 --max_faces_per_group=100

Every flag and mode: face_aging/apps/evaluate.py and docs/EVALUATION.md.
"""
from face_aging.apps import evaluate  # imports no TensorFlow

if __name__ == "__main__":
    evaluate.run()
