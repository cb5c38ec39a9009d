"""The two unpaired domains, young (A) and old (B), as the reference's ``unaligned`` dataset.

Where the faces come from:

- two folders (``young_dir``, ``old_dir``): every .jpg/.jpeg/.png/.bmp below each, recursively,
  sorted by path (the reference's ``make_dataset``); or
- an age list as ``python -m face_aging.data.prepare`` writes it (``train_age.txt``: one
  ``relative/path age`` a line, paths relative to ``age_list_root``, by default the list's
  folder): ages <= ``young_max_age`` are young, ages >= ``old_min_age`` are old, the ones
  between are not used.

``max_dataset_size`` keeps the first N paths of each domain (the reference's option). Each
file is decoded once by Pillow at setup (``images.probe``, JPEGs at 1/8 scale): unreadable,
empty and truncated files and formats TF cannot decode are left out and reported in one line;
a domain left without a full batch stops the run with one line (:class:`DataError`). A file
that still fails in TF's decoder during training is skipped with a logged warning. Training
decodes with ``images.decode_tf`` (transparency on white, as every reader of the project),
which cannot apply EXIF rotations: the files that have one are counted in the same line.

Training pipeline (``--preprocess resize_and_crop``, the reference's default): decode as
RGB, resize to ``load_size x load_size`` (bicubic with antialiasing, rounded to whole 0..255
levels as PIL's uint8 image), random ``crop_size`` crop, random horizontal flip (unless
``no_flip``), then ``x / 127.5 - 1`` (``Normalize((0.5,) * 3, (0.5,) * 3)`` of ``ToTensor``).
The jitter is drawn with stateless random ops seeded by ``(seed, domain, element index)``:
it does not depend on thread timing and the ``tf.data`` iterator (in the checkpoint)
resumes it exactly. Each domain is reshuffled every pass and repeated; a step takes one
batch of each. An epoch is ``max(len(A), len(B)) // batch_size`` steps (the reference:
``len(dataset) = max(A_size, B_size)``, A in shuffled order, B drawn at random with
replacement; here B runs through its own shuffled passes, each face once a pass).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from face_aging import images, pixels
from face_aging.cyclegan.config import DataError, domain_images
from face_aging.data import lists

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Domains:
    """The image paths of each domain, what was left out, and the epoch length."""

    young: List[str]
    old: List[str]
    skipped: List[Tuple[str, str]]   # (path, reason) of unreadable files
    source: str                      # a short description for logs
    rotated: List[str] = dataclasses.field(default_factory=list)  # EXIF rotation not applied

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(len(self.young), len(self.old)) // batch_size

    def summary(self) -> str:
        line = f"{self.source}: {len(self.young)} young, {len(self.old)} old faces"
        if self.skipped:
            path, reason = self.skipped[0]
            line += (f"; left out {len(self.skipped)} unreadable file(s) "
                     f"(e.g. {path}: {reason})")
        if self.rotated:
            line += (f"; {len(self.rotated)} file(s) with an EXIF rotation are used as stored "
                     f"(TensorFlow's decoder does not turn them; e.g. {self.rotated[0]})")
        return line


from face_aging.cyclegan.config import default_load_size  # noqa: E402,F401 (TF-free home)


def split_age_list(list_path: str, root: Optional[str], young_max_age: float,
                   old_min_age: float) -> Tuple[List[str], List[str]]:
    """``(young, old)`` paths from an age list (``relative/path age`` lines).

    Raises:
      DataError: missing or malformed list, or ``young_max_age >= old_min_age``.
    """
    if young_max_age >= old_min_age:
        raise DataError(f"young_max_age {young_max_age} must be below old_min_age {old_min_age}")
    try:
        entries = lists.read_image_list(list_path)
    except lists.ListFormatError as e:
        raise DataError(str(e)) from None
    root = root if root is not None else os.path.dirname(os.path.abspath(list_path))
    young = sorted(os.path.join(root, p) for p, age in entries if age <= young_max_age)
    old = sorted(os.path.join(root, p) for p, age in entries if age >= old_min_age)
    return young, old


def check_images(paths: Sequence[str]
                 ) -> Tuple[List[str], List[Tuple[str, str]], List[str]]:
    """``(readable, [(path, reason), ...], rotated)``: each file decoded once by Pillow
    (``images.probe``, JPEGs at 1/8 scale: the 3,238 WIKI faces take about 1 s on one loaded
    core), in a format TensorFlow decodes; ``rotated``: readable files whose EXIF rotation
    TensorFlow's decoder does not apply."""
    good, bad, rotated = [], [], []
    for path in paths:
        try:
            notes = images.probe(path)
        except images.BadImageError as e:
            bad.append((path, e.reason))
            continue
        good.append(path)
        if notes:
            rotated.append(path)
    return good, bad, rotated


def load_domains(young_dir: Optional[str] = None, old_dir: Optional[str] = None,
                 age_list: Optional[str] = None, age_list_root: Optional[str] = None,
                 young_max_age: float = 30, old_min_age: float = 50,
                 max_dataset_size: Optional[int] = None, batch_size: int = 1) -> Domains:
    """The two domains from folders or an age list (see the module docstring).

    Raises:
      DataError: one line saying what is wrong.
    """
    if age_list and (young_dir or old_dir):
        raise DataError("give either --young_dir/--old_dir or --age_list, not both")
    if age_list:
        young, old = split_age_list(age_list, age_list_root, young_max_age, old_min_age)
        source = f"{age_list} (young <= {young_max_age:g}, old >= {old_min_age:g})"
        names = {"young": f"{age_list}: ages <= {young_max_age:g}",
                 "old": f"{age_list}: ages >= {old_min_age:g}"}
    elif young_dir and old_dir:
        young = domain_images(young_dir, "--young_dir")
        old = domain_images(old_dir, "--old_dir")
        source = f"{young_dir} | {old_dir}"
        names = {"young": f"--young_dir {young_dir}", "old": f"--old_dir {old_dir}"}
    else:
        raise DataError("no data: give --young_dir and --old_dir, or --age_list")
    skipped, rotated = [], []
    domains = {}
    for key, paths in (("young", young), ("old", old)):
        if max_dataset_size is not None:
            paths = paths[:max_dataset_size]
        good, bad, turned = check_images(paths)
        skipped += bad
        rotated += turned
        if len(good) < batch_size:
            detail = f" ({len(bad)} unreadable, e.g. {bad[0][0]}: {bad[0][1]})" if bad else ""
            raise DataError(f"{names[key]}: {len(good)} readable images, fewer than one batch of "
                            f"{batch_size}{detail}")
        domains[key] = good
    return Domains(domains["young"], domains["old"], skipped, source, rotated)


def resize_rounded(images, size: int) -> tf.Tensor:
    """RGB 0..255 ``[..., H, W, 3]`` (any dtype) -> float32 ``[..., size, size, 3]``: bicubic,
    antialiased, rounded to whole 0..255 levels (as PIL's uint8 image). The one resize of
    training faces, sample strips, inference and export."""
    image = tf.image.resize(tf.cast(images, tf.float32), (size, size), method="bicubic",
                            antialias=True)
    return tf.clip_by_value(tf.round(image), 0.0, 255.0)


def _decode_resized(path: tf.Tensor, size: int) -> tf.Tensor:
    """File -> float32 RGB 0..255 at ``size x size``: bicubic, antialiased, whole levels."""
    return resize_rounded(images.decode_tf(tf.io.read_file(path)), size)


def load_jittered(path: tf.Tensor, seed: tf.Tensor, load_size: int, crop_size: int,
                  flip: bool = True) -> tf.Tensor:
    """One training face in [-1, 1]: resize to ``load_size``, random crop, random flip.

    ``seed``: int64 ``[2]``, the stateless seed of this element's jitter.
    """
    image = _decode_resized(path, load_size)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if load_size > crop_size:
        top = tf.random.stateless_uniform([], seeds[0], 0, load_size - crop_size + 1, tf.int32)
        left = tf.random.stateless_uniform([], seeds[1], 0, load_size - crop_size + 1, tf.int32)
        image = image[top:top + crop_size, left:left + crop_size]
    if flip:
        mirrored = tf.random.stateless_uniform([], seeds[2]) < 0.5
        image = tf.cond(mirrored, lambda: tf.reverse(image, [1]), lambda: image)
    image.set_shape([crop_size, crop_size, 3])
    return pixels.to_unit_range(image)


def load_plain(path: tf.Tensor, crop_size: int) -> tf.Tensor:
    """A face resized to ``crop_size`` (no jitter) in [-1, 1]: sample strips."""
    image = _decode_resized(path, crop_size)
    image.set_shape([crop_size, crop_size, 3])
    return pixels.to_unit_range(image)


def domain_dataset(paths: Sequence[str], batch_size: int, crop_size: int, load_size: int,
                   flip: bool, seed: int, domain: int) -> tf.data.Dataset:
    """Endless batches ``[batch_size, crop, crop, 3]`` of one domain, reshuffled every pass."""
    ds = tf.data.Dataset.from_tensor_slices(list(paths))
    ds = ds.shuffle(len(paths), seed=seed * 2 + domain, reshuffle_each_iteration=True).repeat()
    ds = ds.enumerate()

    def load(index, path):
        element_seed = tf.stack([tf.constant(seed * 2 + domain, tf.int64), index])
        return load_jittered(path, element_seed, load_size, crop_size, flip)

    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)  # a file that fails to decode is logged and skipped
    return ds.batch(batch_size, drop_remainder=True)


def make_unaligned_dataset(domains: Domains, batch_size: int = 1, crop_size: int = 256,
                           load_size: Optional[int] = None, flip: bool = True,
                           seed: int = 0) -> tf.data.Dataset:
    """Endless ``{"A": young batch, "B": old batch}`` dicts, each ``[B, crop, crop, 3]`` in
    [-1, 1], jittered as the module docstring says."""
    load_size = default_load_size(crop_size) if load_size is None else load_size
    if load_size < crop_size:
        raise DataError(f"load_size {load_size} is smaller than crop_size {crop_size}")
    a = domain_dataset(domains.young, batch_size, crop_size, load_size, flip, seed, 0)
    b = domain_dataset(domains.old, batch_size, crop_size, load_size, flip, seed, 1)
    return tf.data.Dataset.zip(a, b).map(lambda x, y: {"A": x, "B": y}).prefetch(AUTOTUNE)


def sample_batches(domains: Domains, crop_size: int, count: int = 4) -> Dict[str, tf.Tensor]:
    """Fixed faces for the sample strips: the first ``count`` of each domain, no jitter."""
    out = {}
    for key, paths in (("A", domains.young), ("B", domains.old)):
        images = []
        for path in paths:
            try:
                images.append(load_plain(tf.constant(path), crop_size))
            except tf.errors.OpError:
                continue  # undecodable despite a readable header: take the next one
            if len(images) == count:
                break
        if not images:
            raise DataError(f"no decodable {'young' if key == 'A' else 'old'} face for samples")
        out[key] = tf.stack(images)
    return out

