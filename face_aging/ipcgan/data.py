"""tf.data input pipeline over the release's list layout (spec §2, §3, §4).

Each training batch is a dict:

- ``source_128``: ``[B, S, S, 3]`` float32, RGB 0..255 minus ``MEAN_RGB``, TF1 resize grid
  (S = ``image_size``, the release's 128);
- ``source_227``: ``[B, 227, 227, 3]`` the same faces for AlexNet, same scale and grid;
- ``real``: ``[B, S, S, 3]`` float32 in [-1, 1], real faces *of the target group*, cv2 grid;
- ``target_group``, ``false_group``: int32 ``[B]`` (every sample of a batch shares the pair,
  unless ``per_sample_targets``).

Source faces are drawn from the whole training list independently of the target
group; the (t, f) pairs are read from ``train_label_pair.txt`` in file order and
cycled, one pair a step, as the release did. Each list is reshuffled every epoch.

``per_sample_targets`` (not the release) takes one pair *per face* from the same cycle, so a
batch mixes target groups. Why it matters: when every face of a batch has the same target,
the one-hot condition map is constant over the batch, and the batch normalisation right
after the generator's first convolution (batch statistics, as the release trains) subtracts
that constant again, all but the share the zero-padded image borders leave in the batch mean
(about 7% of the mixed-batch signal at 64 px, at initialisation). With mixed targets the
condition passes the first batch norm intact.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import tensorflow as tf

from face_aging import images, pixels
from face_aging.data import lists
from face_aging.errors import InputError

AUTOTUNE = tf.data.AUTOTUNE


class DatasetError(InputError):
    """The list layout is incomplete or names files that are not there."""


def _check_files(root_folder: str, entries: Sequence[Tuple[str, int]], list_path: str) -> None:
    missing = [p for p, _ in entries if not os.path.isfile(os.path.join(root_folder, p))]
    if missing:
        examples = ", ".join(missing[:3])
        raise DatasetError(f"{list_path}: {len(missing)} of {len(entries)} listed images are "
                           f"missing under root folder {root_folder} (e.g. {examples})")


def _paths(root_folder: str, entries) -> List[str]:
    return [os.path.join(root_folder, p) for p, _ in entries]


def load_source(path: tf.Tensor, image_size: int = 128):
    """Image file -> ``(source_S, source_227)``, RGB 0..255 minus the mean, TF1 resize grid."""
    image = images.decode_tf(tf.io.read_file(path))
    source = pixels.subtract_mean(pixels.resize_tf1(image, (image_size, image_size)))
    source_227 = pixels.subtract_mean(
        pixels.resize_tf1(image, (pixels.ALEXNET_SIZE, pixels.ALEXNET_SIZE)))
    return source, source_227


def load_real(path: tf.Tensor, image_size: int = 128):
    """Image file -> real face in [-1, 1] at ``image_size``, resized as the release's cv2 call."""
    image = images.decode_tf(tf.io.read_file(path))
    return pixels.to_unit_range(pixels.resize_cv2(image, (image_size, image_size)))


def _image_dataset(paths, loader, batch_size, seed, image_size, cache=False, shard=(1, 0)):
    """Shuffled, repeated, decoded faces, batched by ``batch_size`` (None: single faces)."""
    ds = tf.data.Dataset.from_tensor_slices(paths).shard(*shard)
    load = lambda p: loader(p, image_size)
    if cache:
        # Decode and resize each face once, keep the float tensors in memory, shuffle those.
        ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.ignore_errors(log_warning=True).cache()
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
    else:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.ignore_errors(log_warning=True)  # a corrupt file is logged and skipped
    return ds if batch_size is None else ds.batch(batch_size, drop_remainder=True)


def make_train_dataset(list_dir: str, root_folder: Optional[str], batch_size: int,
                       age_groups: int = 5, image_size: int = 128, seed: int = 0,
                       source_file: Optional[str] = None, cache: bool = False,
                       num_shards: int = 1, shard_index: int = 0,
                       per_sample_targets: bool = False) -> tf.data.Dataset:
    """The infinite training dataset of batch dicts (see the module docstring).

    Args:
      list_dir: folder of ``train.txt``, ``train_age_group_k.txt``, ``train_label_pair.txt``.
      root_folder: the list paths are relative to it (default: ``list_dir``).
      batch_size: faces per batch (B); the release used 32.
      seed: shuffling seed (data order is reproducible for a given seed).
      source_file: the list of source faces (default ``list_dir/train.txt``).
      cache: keep every decoded, resized face in memory after its first use (about
        0.8 MB a training image at 128/227; for datasets that fit in RAM). The data order
        then differs from the uncached pipeline's, but is as reproducible.
      num_shards, shard_index: this input pipeline's share of the faces (one pipeline per
        worker of a multi-worker run: disjoint images, ``batch_size`` = the worker's share of
        the global batch). The label pairs are not sharded: every worker follows the same
        pair sequence, so a global batch still shares one (target, false) pair.
      per_sample_targets: one (target, false) pair per face instead of per batch, each real
        face drawn from its own target group (see the module docstring). Off = the release.
    Raises:
      DatasetError, lists.ListFormatError: one line naming the file and the problem.
    """
    root_folder = root_folder or list_dir
    source_file = source_file or os.path.join(list_dir, lists.TRAIN_LIST)
    source_entries = lists.read_image_list(source_file)
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index {shard_index} outside 0..{num_shards - 1}")
    shard = (num_shards, shard_index)
    if len(source_entries) // num_shards < batch_size:
        raise DatasetError(f"{source_file}: {len(source_entries)} images, fewer than one batch "
                           f"of {batch_size}" + (f" per shard ({num_shards} shards)"
                                                 if num_shards > 1 else ""))
    _check_files(root_folder, source_entries, source_file)
    pairs_path = os.path.join(list_dir, lists.LABEL_PAIR_LIST)
    pairs = lists.read_label_pairs(pairs_path, age_groups)
    needed = sorted({t for t, _ in pairs})

    real_datasets = []
    for group in range(age_groups):
        group_path = os.path.join(list_dir, lists.age_group_list("train", group))
        entries = lists.read_image_list(group_path) if os.path.isfile(group_path) else []
        if group not in needed and not entries:  # no pair targets it: it may be absent or empty
            real_datasets.append(None)
            continue
        if not entries:
            raise DatasetError(f"{group_path}: no images, but {pairs_path} asks for group {group}")
        _check_files(root_folder, entries, group_path)
        if len(entries) < num_shards:  # an empty shard would repeat() forever
            raise DatasetError(f"{group_path}: {len(entries)} images, fewer than the "
                               f"{num_shards} input shards (workers)")
        real_datasets.append(_image_dataset(_paths(root_folder, entries), load_real,
                                            None if per_sample_targets else batch_size,
                                            seed + 1 + group, image_size, cache, shard))
    placeholder = next(ds for ds in real_datasets if ds is not None)
    real_datasets = [ds if ds is not None else placeholder for ds in real_datasets]

    source_ds = _image_dataset(_paths(root_folder, source_entries), load_source, batch_size,
                               seed, image_size, cache, shard)
    targets = tf.constant([t for t, _ in pairs], tf.int64)
    falses = tf.constant([f for _, f in pairs], tf.int32)
    pair_ds = tf.data.Dataset.from_tensor_slices((targets, falses)).repeat()
    real_ds = tf.data.Dataset.choose_from_datasets(real_datasets, pair_ds.map(lambda t, f: t))
    if per_sample_targets:  # faces were chosen one by one: batch them with their pairs
        real_ds = real_ds.batch(batch_size, drop_remainder=True)
        pair_ds = pair_ds.batch(batch_size, drop_remainder=True)

    def to_batch(source, real, pair):
        (source_128, source_227), (t, f) = source, pair
        t, f = tf.cast(t, tf.int32), tf.cast(f, tf.int32)
        if not per_sample_targets:
            t, f = tf.fill([batch_size], t), tf.fill([batch_size], f)
        return {"source_128": source_128, "source_227": source_227, "real": real,
                "target_group": t, "false_group": f}

    ds = tf.data.Dataset.zip((source_ds, real_ds, pair_ds)).map(to_batch)
    return ds.prefetch(AUTOTUNE)
