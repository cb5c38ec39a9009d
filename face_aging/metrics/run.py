"""The model-free half of an evaluation run (``evaluate.py``): progress counting, the FID/KID
feature network, provenance (file hashes, the git commit) and the cross-age summary lines.
The model halves are ``face_aging.ipcgan.evaluate`` and ``face_aging.cyclegan.evaluate``; the
command ``face_aging.apps.evaluate``. No TensorFlow at import time.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from face_aging import errors, progress

#: The checkout this package sits in (``git_commit`` asks git there).
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


#: Bad options of an evaluation run (one line): ``errors.UsageError`` under the name
#: ``face_aging.apps.evaluate`` imports from here.
UsageError = errors.UsageError


def counted(fn, total, desc):
    """``fn(faces, ...)`` that also counts the faces on a progress bar (a terminal only),
    closed when ``total`` faces are done (the judges' lines follow it)."""
    bar = progress.bar(total, desc, unit="face")

    def counted(faces, *args):
        out = fn(faces, *args)
        if bar.n < total:
            bar.update(len(faces))
            if bar.n >= total:
                bar.close()
        return out

    return counted


def feature_network(inception_weights, alexnet_checkpoint, checkpoint_dir, batch_size, age_groups):
    """The FID/KID feature network: InceptionV3 from ``inception_weights``, else the AlexNet's
    pool5 (trunk from ``alexnet_checkpoint``, else from ``checkpoint_dir`` if it holds one, else
    random, with a warning)."""
    from face_aging.metrics import features

    if inception_weights:
        return features.InceptionFeatures(inception_weights, batch_size)
    from face_aging.backbones import ALEXNET_TRUNK
    from face_aging.backbones.alexnet import AlexNet, build_alexnet, load_alexnet_layers

    alexnet = AlexNet(age_groups=age_groups)
    build_alexnet(alexnet)
    source = alexnet_checkpoint or checkpoint_dir
    note = "random initialisation (no AlexNet checkpoint given or found)"
    if source:
        from face_aging import checkpoints

        try:
            load_alexnet_layers(source, alexnet, ALEXNET_TRUNK)
            note = f"trunk conv1-conv5 from {os.path.abspath(source)}"
        except checkpoints.CheckpointMismatchError:
            if alexnet_checkpoint:
                raise
    if note.startswith("random"):
        print("WARNING: FID/KID features come from a randomly initialised AlexNet "
              "(pass --inception_weights or --alexnet_checkpoint)", file=sys.stderr)
    return features.AlexNetFeatures(alexnet, note, batch_size)


def sha256(path):
    """The SHA-256 of a file, hex (the provenance of the lists a report read)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def git_commit():
    """The checkout's commit (``git rev-parse HEAD``), or None outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=REPOSITORY,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def cross_age_summary(results) -> str:
    """The cross-age headline lines for the terminal."""
    ident = results["identity"]
    base = ident["baseline"]
    line = lambda what, r: (f"  {what}: {100 * r['genuine']['verified']:.1f} % of pairs verified "
                            f"against the adult photo ({100 * r['genuine']['verified_per_person']:.1f}"
                            f" % per person), impostors {100 * r['impostor']['verified']:.1f} %")
    out = [f"cross-age, {ident['pairs']} pairs of {ident['people']} people, dlib distance <= "
           f"{ident['threshold']}:", line("young photo itself (baseline)", base)]
    out += [line(f"aged to group {r['group']} ({r['name']})", r) for r in ident["groups"]]
    return "\n".join(out)
