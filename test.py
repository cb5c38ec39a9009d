"""Age faces with a trained IPCGAN generator: the release's test script, and more.

    python test.py                                  # images/test -> output/test
    python test.py --test_data_dir=photos --detect_faces --all_faces
    python test.py --model=cyclegan --checkpoint_dir=checkpoints/cyclegan_wiki128
    python test.py --video=clip.mp4 --target_groups=4

Every flag: face_aging/apps/age.py and docs/INFERENCE.md. Exit status 0 = all processed,
1 = some file failed, 2 = nothing could run (no weights, bad flags).
"""
from face_aging.apps import age  # imports no TensorFlow

if __name__ == "__main__":
    age.run()
