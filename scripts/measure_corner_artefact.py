"""Where the bundled model's red/green corner blotch comes from (docs/INFERENCE.md, "Known
artefacts").

Counts ``face_aging.ipcgan.bundle.corner_artefacts`` (made-up saturated pixels in each corner)
of a generator's outputs, per target group, when it is run the ways that could cause it:

- ``moving``: as ``test.py`` runs it (moving batch-norm statistics, the model's side);
- ``mirrored``: the input mirrored left-right and the output mirrored back -- an artefact of
  the weights stays in G's own corner, so it moves to the other side of the face;
- ``batch_same_target``: the release's test mode, each face in a batch with ``--references``
  training faces, all given the face's target (batch statistics);
- ``batch_mixed_targets``: batch statistics with the references given every group in turn,
  as training with ``--per_sample_targets`` normalised its batches;
- ``at_double_size``: the input at twice the model's side (a border effect moves with size);
- ``reflect_padded``: the input reflection-padded by a quarter of the side on each side, the
  output cropped back (a common cure for border effects).

Each way's ``centre_change`` is the mean absolute difference (0..255 levels) of its outputs
from the ``moving`` ones in the central half of the face: what the way does to the face.

  python scripts/measure_corner_artefact.py --faces=images/test \\
      --references=../shared/data/utkface --output=corners.json
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_list("faces", ["images/test"], "Face files or folders (every image file).")
flags.DEFINE_string("references", None, "Folder of training-like faces for the batch-statistics "
                    "rows (the first --reference_count of them, name order); without it those "
                    "rows are left out.")
flags.DEFINE_integer("reference_count", 31, "Reference faces per batch (the release: 31).")
flags.DEFINE_string("checkpoint_dir", None, "Generator (default: the bundled model).")
flags.DEFINE_string("output", None, "Optional JSON file with every count.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from face_aging import images
    from face_aging.ipcgan import inference as ipcgan_inference

    faces = [images.read_image(p)[0] for entry in FLAGS.faces
             for p in images.list_image_files(entry)]
    generator = ipcgan_inference.load_generator(FLAGS.checkpoint_dir
                                                or ipcgan_inference.BUNDLED_CHECKPOINT_DIR)
    result = measure(generator, faces, ways_of_running(generator, FLAGS.references,
                                                       FLAGS.reference_count))
    if FLAGS.output:
        from face_aging.files import atomic_write_json

        atomic_write_json(FLAGS.output, result)
    return 0


def ways_of_running(generator, references=None, reference_count=31):
    """``{name: age(copies, targets) or None (moving statistics)}``: the ways of running the
    generator compared (batch statistics only with ``references``)."""
    import numpy as np

    from face_aging import inference, pixels
    from face_aging.ipcgan import inference as ipcgan_inference

    size = ipcgan_inference.generator_image_size(generator)
    groups = generator.age_groups

    def mirrored(copies, targets):
        aged = ipcgan_inference.age_faces(generator, [f[:, ::-1] for f in copies], targets)
        return aged[:, :, ::-1]

    def at_double_size(copies, targets):
        import cv2

        generator.image_size = 2 * size
        try:
            aged = ipcgan_inference.age_faces(generator, copies, targets)
        finally:
            generator.image_size = size
        return np.stack([cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA) for a in aged])

    def reflect_padded(copies, targets):
        pad = size // 4
        shown = pixels.resize_cv2(np.stack([copies[0]]), (size, size)).numpy()
        padded = np.pad(shown, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        generator.image_size = size + 2 * pad
        try:
            aged = ipcgan_inference.age_faces(
                generator, [padded[0].astype(np.uint8)] * len(targets), targets)
        finally:
            generator.image_size = size
        return aged[:, pad:pad + size, pad:pad + size]

    ways = {"moving": None, "mirrored": mirrored, "at_double_size": at_double_size,
            "reflect_padded": reflect_padded}
    if not references:
        return ways
    refs = inference.read_reference_faces(references, reference_count)

    def batch_same_target(copies, targets):
        return ipcgan_inference.age_faces(generator, copies, targets, bn_mode="batch",
                                          reference_faces=refs, batch_size=len(refs) + 1)

    def batch_mixed_targets(copies, targets):
        sources = ipcgan_inference.preprocess_faces([copies[0]] + refs, size)
        out = []
        for target in targets:
            vectors = np.eye(groups, dtype=np.float32)[
                [int(target)] + [k % groups for k in range(len(refs))]]
            out.append(generator((sources, vectors), training=False,
                                 batch_stats=True).numpy()[0])
        return pixels.to_uint8(np.stack(out))

    return dict(ways, batch_same_target=batch_same_target,
                batch_mixed_targets=batch_mixed_targets)


def measure(generator, faces, ways) -> dict:
    """Corner artefacts of each way (``bundle.corner_artefacts``) and how much it changes the
    face's centre against moving statistics; prints a table, returns every number."""
    import numpy as np

    from face_aging.ipcgan import bundle, inference as ipcgan_inference

    size = ipcgan_inference.generator_image_size(generator)
    groups = generator.age_groups
    corners = ("top-left", "top-right", "bottom-left", "bottom-right")
    result = {"faces": len(faces), "limit": bundle.CORNER_ARTEFACT_LIMIT, "ways": {}}
    print(f"{len(faces)} faces; made-up saturated pixels a corner (of "
          f"{round(size * bundle.CORNER_FRACTION)}^2), mean over faces, per target group "
          f"0..{groups - 1}:")
    quarter = size // 4
    moving_outputs = [ipcgan_inference.age_faces(generator, [f] * groups,
                                                 np.arange(groups)).astype(int)
                      for f in faces]
    for name, age in ways.items():
        counts = bundle.corner_artefacts(generator, faces, age)  # [faces, groups, 4]
        mean = counts.mean(0)
        result["ways"][name] = {c: [round(float(v), 2) for v in mean[:, i]]
                                for i, c in enumerate(corners)}
        result["ways"][name]["max"] = int(counts.max())
        change = 0.0
        if age is not None:
            centre = np.s_[:, quarter:size - quarter, quarter:size - quarter]
            change = float(np.mean([np.abs(age([f] * groups, np.arange(groups)).astype(int)[centre]
                                           - m[centre]).mean()
                                    for f, m in zip(faces, moving_outputs)]))
        result["ways"][name]["centre_change"] = round(change, 2)
        for i, corner in enumerate(corners):
            print(f"  {name:20s} {corner:12s} " + " ".join(f"{v:6.1f}" for v in mean[:, i]))
        print(f"  {name:20s} centre change vs moving: {change:.2f} levels")
    return result


if __name__ == "__main__":
    from face_aging import cli

    cli.run(main)
