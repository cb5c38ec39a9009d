"""The data of AlexNet pretraining: the prepared folders read and split (validation by a
seeded hash), the images decoded once into memory, and the training stream, a pure function of
the seed and the number of samples drawn.

Data: a prepared dataset (``python -m face_aging.data.prepare``): ``train.txt`` / ``test.txt``
(``path group``) and, where the dataset has identities (CACD, IMDB-WIKI), ``train_identity.txt``
(``path identity``). A held-out validation split is taken from ``train.txt`` (by identity where
there are identities, else by image; a seeded hash, so it is the same on every run and resume);
``test.txt`` is only read for the final report.

Images are decoded once, resized to 227x227 (half-pixel bilinear, rounded to uint8, as the
release's ``cv2.resize``) and held in memory as uint8; augmentation runs on the fly:
random square crop (``crop_scale_min``..1 of the side) resized back to 227, horizontal flip,
brightness/contrast/saturation jitter, and with probability ``lowres_prob`` a round trip
through 128x128 (cv2 grid down, TF1 grid up: what the GAN does to its generated faces
before AlexNet sees them). Input scale: RGB 0..255 minus ``pixels.MEAN_RGB`` (spec §3).

Every random draw of training is a pure function of the seed and a counter: the n-th
training sample (order: a stateless permutation per epoch, ``index_shuffle``) and its
augmentation are keyed on ``(seed, n)``, dropout on ``(seed, step)`` (:func:`seed_of`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from face_aging import images, pixels
from face_aging.alexnet.config import PretrainConfig, PretrainError
from face_aging.data import lists

SIZE = pixels.ALEXNET_SIZE
IDENTITY_LIST = "train_identity.txt"
VERIFICATION_PAIRS = "verification_pairs.txt"


# ----------------------------------------------------------------------------- data

@dataclasses.dataclass
class PretrainData:
    """What the prepared folders give the pretraining.

    Entries are ``(path, age_group, identity)`` with ``path`` joined to its folder's root;
    ``age_group`` is -1 for an image without an age label (an identity-only set such as
    CACD-VS or LAG), ``identity`` -1 for one without an identity (UTKFace).
    """

    train: List[Tuple[str, int, int]]
    val: List[Tuple[str, int, int]]
    test: List[Tuple[str, int, int]]            # age test images (``test.txt``)
    identities: int                             # distinct training identities (0: none)
    verification_pairs: List[str]               # ``verification_pairs.txt`` files found
    list_dirs: List[str]

    @property
    def has_age(self) -> bool:
        return any(g >= 0 for _, g, _ in self.train)

    @property
    def has_identity(self) -> bool:
        return self.identities > 0


def list_dirs_of(config: PretrainConfig) -> List[str]:
    """``config.list_dir`` as a list: one folder, or several separated by commas."""
    return [d.strip() for d in str(config.list_dir).split(",") if d.strip()]


def _read_list(path: str):
    try:
        return lists.read_image_list(path)
    except lists.ListFormatError as e:
        raise PretrainError(str(e)) from None


def read_datasets(config: PretrainConfig) -> PretrainData:
    """Reads every prepared folder of ``config.list_dir`` (comma-separated) and splits off the
    validation set.

    Per folder: ``train.txt`` (``path group``) and ``test.txt`` where it has ages,
    ``train_identity.txt`` (``path identity``) where it has identities (``identity="auto"``),
    ``verification_pairs.txt`` for the report. Identities are numbered densely over all
    folders (folder by folder, so two folders never share one). The validation split is a
    seeded hash of the identity where there is one (a person never straddles the split), else
    of the file's name as its list gives it, so the split does not depend on where the dataset
    lives.
    """
    dirs = list_dirs_of(config)
    if not dirs:
        raise PretrainError("--list_dir is empty")
    if config.root_folder and len(dirs) > 1:
        raise PretrainError("--root_folder needs a single --list_dir (each of several folders "
                            "is the root of its own paths)")
    merged: Dict[str, List[int]] = {}
    listed_as: Dict[str, str] = {}  # path -> the name its list gives it (the split's key)
    test: List[Tuple[str, int, int]] = []
    pairs: List[str] = []
    next_id = 0
    for list_dir in dirs:
        root = config.root_folder or list_dir
        train_path = os.path.join(list_dir, lists.TRAIN_LIST)
        identity_path = os.path.join(list_dir, IDENTITY_LIST)
        use_identity = config.identity == "on" or (config.identity == "auto"
                                                   and os.path.isfile(identity_path))
        if not os.path.isfile(train_path) and not (use_identity and os.path.isfile(identity_path)):
            raise PretrainError(f"{list_dir}: no {lists.TRAIN_LIST} or {IDENTITY_LIST} (prepare "
                                "the dataset with python -m face_aging.data.prepare)")
        if use_identity and not os.path.isfile(identity_path):
            raise PretrainError(f"--identity=on but {identity_path} does not exist")
        ages = _read_list(train_path) if os.path.isfile(train_path) else []
        test_path = os.path.join(list_dir, lists.TEST_LIST)
        if ages and not os.path.isfile(test_path):
            raise PretrainError(f"missing {test_path} (prepare the dataset with "
                                "python -m face_aging.data.prepare)")
        folder_test = _read_list(test_path) if ages else []
        for name, entries in (("train", ages), ("test", folder_test)):
            bad = [(p, g) for p, g in entries if not 0 <= g < config.age_groups]
            if bad:
                raise PretrainError(f"{list_dir}: {name} list has age group {bad[0][1]} "
                                    f"({bad[0][0]}) outside 0..{config.age_groups - 1}")
        if config.max_images and config.max_images < len(ages):
            order = np.random.default_rng(config.split_seed).permutation(len(ages))
            ages = [ages[i] for i in sorted(order[:config.max_images])]
        for rel, group in ages:
            merged.setdefault(os.path.join(root, rel), [group, -1])[0] = group
            listed_as[os.path.join(root, rel)] = rel
        if use_identity:
            raw = _read_list(identity_path)
            dense = {v: next_id + k for k, v in enumerate(sorted({v for _, v in raw}))}
            next_id += len(dense)
            for rel, identity in raw:
                merged.setdefault(os.path.join(root, rel), [-1, -1])[1] = dense[identity]
                listed_as[os.path.join(root, rel)] = rel
        test += [(os.path.join(root, p), g, -1) for p, g in folder_test]
        pair_file = os.path.join(list_dir, VERIFICATION_PAIRS)
        if os.path.isfile(pair_file):
            pairs.append(pair_file)
    if next_id > config.identities:
        raise PretrainError(f"{next_id} identities in {', '.join(dirs)}; the AlexNet's identity "
                            f"head new_2 has {config.identities} (the release's 2000)")
    identities = next_id if next_id >= 2 else 0
    entries = [(p, g, i if identities else -1) for p, (g, i) in merged.items()]
    entries = [e for e in entries if e[1] >= 0 or e[2] >= 0]
    val_set = {p for p, _, i in entries
               if _in_validation(f"id:{i}" if i >= 0 else f"file:{listed_as[p]}", config)}
    train_e = [e for e in entries if e[0] not in val_set]
    val_e = [e for e in entries if e[0] in val_set]
    if not train_e:
        raise PretrainError("no training images left after the validation split")
    if config.val_fraction > 0 and not val_e:
        raise PretrainError(f"--val_fraction={config.val_fraction} left no validation image; "
                            "raise it or use more images")
    return PretrainData(train_e, val_e, test, identities, pairs, dirs)


def _in_validation(key: str, config: PretrainConfig) -> bool:
    """Whether the seeded hash of ``key`` (an identity or a listed file name) falls in the
    first ``config.val_fraction`` of the hash range."""
    digest = hashlib.sha1(f"{config.split_seed}:{key}".encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < config.val_fraction


def group_names_of(list_dir: str, age_groups: int) -> List[str]:
    with contextlib.suppress(OSError, ValueError):  # no or a bad summary: the group numbers
        with open(os.path.join(list_dir, "summary.json"), encoding="utf-8") as f:
            names = json.load(f).get("group_names")
        if isinstance(names, list) and len(names) == age_groups:
            return [str(n) for n in names]
    return [str(k) for k in range(age_groups)]


def class_weights(counts: Sequence[int], power: float) -> np.ndarray:
    """Per-group loss weights ~ (1 / frequency) ** power, normalised to mean 1 over the
    training samples (so the loss scale does not change); 0 for absent groups."""
    counts = np.asarray(counts, np.float64)
    weights = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    mean = (weights * counts).sum() / counts.sum()
    return (weights / mean).astype(np.float32)


def _load_227(path):
    image = images.decode_tf(tf.io.read_file(path))
    shape = tf.shape(image)

    def resize():
        return tf.cast(pixels.resize_cv2(image, (SIZE, SIZE)), tf.uint8)

    image = tf.cond(tf.logical_and(tf.equal(shape[0], SIZE), tf.equal(shape[1], SIZE)),
                    lambda: image, resize)
    return tf.ensure_shape(image, [SIZE, SIZE, 3])


# Random streams: a stateless seed is (config.seed, counter * _STREAMS + stream), so that no
# two uses share a key.
_STREAMS = 16
_ORDER, _AUGMENT, _GROUP, _MEMBER = 0, 1, 2, 3
DROPOUT_STREAM = 8  # + layer index (0..4): dropout masks (alexnet.networks.forward)


def seed_of(seed, counter, stream):
    """A stateless seed (shape [2], int64) for ``counter`` in one stream."""
    counter = tf.cast(counter, tf.int64)
    return tf.stack([tf.cast(seed, tf.int64), counter * _STREAMS + stream])


def _augment(image, config: PretrainConfig, seed):
    """Random crop, flip, colour jitter, 128 px round trip: stateless, keyed on ``seed``."""
    keys = tf.random.experimental.stateless_split(seed, 7)
    x = tf.cast(image, tf.float32)
    if config.crop_scale_min < 1.0:
        scale = tf.random.stateless_uniform([], keys[0], config.crop_scale_min, 1.0)
        side = tf.cast(tf.round(scale * SIZE), tf.int32)
        x = tf.image.stateless_random_crop(x, tf.stack([side, side, 3]), keys[1])
        x = tf.image.resize(x, (SIZE, SIZE), method="bilinear")
    x = tf.image.stateless_random_flip_left_right(x, keys[2])
    j = config.color_jitter
    if j > 0:
        x = tf.image.stateless_random_brightness(x, 255.0 * j * 0.5, keys[3])
        x = tf.image.stateless_random_contrast(x, 1 - j, 1 + j, keys[4])
        x = tf.image.stateless_random_saturation(tf.clip_by_value(x, 0, 255), 1 - j, 1 + j,
                                                 keys[5])
    if config.lowres_prob > 0:
        def roundtrip():
            small = pixels.resize_cv2(tf.clip_by_value(x, 0, 255), (128, 128))
            return pixels.resize_tf1(small, (SIZE, SIZE))
        x = tf.cond(tf.random.stateless_uniform([], keys[6]) < config.lowres_prob,
                    roundtrip, lambda: x)
    return tf.clip_by_value(x, 0.0, 255.0)


def to_input(x):
    return pixels.subtract_mean(x)


def load_images(entries, root: str, print_fn: Callable = None) -> np.ndarray:
    """Decodes every image of ``entries`` once: uint8 ``[N, 227, 227, 3]``, in list order."""
    t0 = time.perf_counter()
    paths = [os.path.join(root, p) for p, _, _ in entries]
    images = np.empty((len(paths), SIZE, SIZE, 3), np.uint8)
    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        _load_227, num_parallel_calls=tf.data.AUTOTUNE).batch(64)
    k = 0
    for batch in ds:
        images[k:k + len(batch)] = batch.numpy()
        k += len(batch)
    if print_fn is not None:
        print_fn(f"decoded {len(paths)} training images ({images.nbytes / 2**20:.0f} MiB) in "
                 f"{time.perf_counter() - t0:.1f} s")
    return images


def sample_index_fn(entries, config: PretrainConfig):
    """``n -> index into entries`` of the n-th training sample: a pure function of
    ``(config.seed, n)``, so the input position is just the number of samples drawn.

    ``class_balance="sampling"``: sample n belongs to round ``n // G`` (G groups present), in
    which every group is drawn once in a shuffled order; a group's k-th draw takes position k
    of its own reshuffled-every-epoch member list. Otherwise: epoch ``n // N``, position
    ``n % N`` of that epoch's permutation of all N entries.
    """
    seed = config.seed
    if config.class_balance == "sampling":
        groups = sorted({g for _, g, _ in entries})
        members = [[i for i, e in enumerate(entries) if e[1] == g] for g in groups]
        flat = tf.constant(np.concatenate(members).astype(np.int64))
        sizes = tf.constant([len(m) for m in members], tf.int64)
        offsets = tf.constant(np.cumsum([0] + [len(m) for m in members[:-1]]), tf.int64)
        count = len(groups)

        def index(n):
            draw, slot = n // count, n % count
            which = tf.random.experimental.index_shuffle(
                slot, seed_of(seed, draw, _GROUP), tf.constant(count - 1, tf.int64))
            size = tf.gather(sizes, which)
            epoch, position = draw // size, draw % size
            shuffled = tf.random.experimental.index_shuffle(
                position, seed_of(seed, epoch * count + which, _MEMBER), size - 1)
            return tf.gather(flat, tf.gather(offsets, which) + shuffled)
        return index

    total = tf.constant(len(entries), tf.int64)

    def index(n):
        epoch, position = n // total, n % total
        return tf.random.experimental.index_shuffle(position, seed_of(seed, epoch, _ORDER),
                                                    total - 1)
    return index


def make_train_dataset(entries, images, config: PretrainConfig, weights: np.ndarray,
                       start_sample: int = 0):
    """Infinite batches ``(images [B,227,227,3] minus mean, age, identity, sample weight)``.

    ``images``: the decoded training images (``load_images``; a ``tf.Variable`` or array).
    The k-th batch holds samples ``start_sample + k*B .. start_sample + k*B + B - 1`` (see
    ``sample_index_fn``); each sample's augmentation is keyed on ``(config.seed, n)``. The
    stream is therefore fully given by ``start_sample``: no iterator state to checkpoint.
    """
    if not isinstance(images, tf.Variable):
        images = tf.Variable(images, trainable=False, name="train_images")
    index_of = sample_index_fn(entries, config)
    groups = tf.constant(np.array([g for _, g, _ in entries], np.int32))
    identities = tf.constant(np.array([i for _, _, i in entries], np.int32))
    weight_table = tf.constant(weights, tf.float32)

    def sample(n):
        i = index_of(n)
        image = tf.gather(images, i)
        group, identity = tf.gather(groups, i), tf.gather(identities, i)
        if config.augment:
            x = _augment(image, config, seed_of(config.seed, n, _AUGMENT))
        else:
            x = tf.cast(image, tf.float32)
        if config.class_balance == "weights":
            w = tf.gather(weight_table, tf.maximum(group, 0))
        else:
            w = tf.constant(1.0)
        w = tf.where(group >= 0, w, 0.0)  # no age label: no age loss
        return to_input(x), group, identity, w

    ds = tf.data.Dataset.range(start_sample, 2**62).map(
        sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(2)


def make_eval_dataset(entries, root: str, batch_size: int, cache: bool = True):
    paths = [os.path.join(root, p) for p, _, _ in entries]
    ds = tf.data.Dataset.from_tensor_slices(
        (paths, np.array([g for _, g, _ in entries], np.int32)))
    ds = ds.map(lambda p, g: (to_input(tf.cast(_load_227(p), tf.float32)), g),
                num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    return ds.batch(batch_size).prefetch(1)


def check_images_exist(entries, root: str, what: str) -> None:
    missing = [p for p, _, _ in entries if not os.path.isfile(os.path.join(root, p))]
    if missing:
        raise PretrainError(f"{len(missing)} {what} image(s) missing under {root}, e.g. "
                            f"{os.path.join(root, missing[0])}")
