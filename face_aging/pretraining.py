"""Training the frozen AlexNet here: the trunk and age head on age labels, the identity head on
identity labels where the dataset has them. The library half of ``python -m face_aging.pretrain``.

Takes a :class:`PretrainConfig`; never reads flags.

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

Long runs. Every random draw of training is a pure function of the seed and a counter:
the n-th training sample (order: a stateless permutation per epoch, ``index_shuffle``) and
its augmentation are keyed on ``(seed, n)``, dropout on ``(seed, step)``. The checkpoint
(``OUTPUT/train/ckpt-N``) holds the weights, the optimizer (slots, iteration count, learning
rate), the step, the number of samples drawn (the input position), the early-stopping state
(best validation accuracy, its step, validations without improvement) and the training time
used; so a restart continues exactly where the checkpoint was written, and with
``deterministic`` (and no time budget: the schedule then depends on wall time) a killed and
restarted run ends with the same weights, bit for bit, as an uninterrupted one.

The network is this project's :class:`face_aging.models.AlexNet` (release layout, LRN, no
batch norm); pretraining adds dropout after age_fc6/age_fc7 (and fc6/fc7/new_1) which the
GAN does not use.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from face_aging import checkpoints, pixels, precision
from face_aging.data import lists
from face_aging.pretrain_config import (CLASS_BALANCE, IDENTITY_MODES, OPTIMIZERS,  # noqa: F401
                                        TRAIN_LAYERS,
                                        PretrainConfig)
from face_aging.pretrain_report import classification_report, write_report
from face_aging.progress import TrainingProgress
from face_aging.training_loop import (NAN_POLICIES, NonFiniteLossError, _StopSignal,
                                      configure_determinism, probe_writable, write_json_atomic)

SIZE = pixels.ALEXNET_SIZE
IDENTITY_LIST = "train_identity.txt"
VERIFICATION_PAIRS = "verification_pairs.txt"


class PretrainError(ValueError):
    """The run cannot start or go on as configured (the message says why, in one line)."""


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
    of the file.
    """
    dirs = list_dirs_of(config)
    if not dirs:
        raise PretrainError("--list_dir is empty")
    if config.root_folder and len(dirs) > 1:
        raise PretrainError("--root_folder needs a single --list_dir (each of several folders "
                            "is the root of its own paths)")
    merged: Dict[str, List[int]] = {}
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
        if use_identity:
            raw = _read_list(identity_path)
            dense = {v: next_id + k for k, v in enumerate(sorted({v for _, v in raw}))}
            next_id += len(dense)
            for rel, identity in raw:
                merged.setdefault(os.path.join(root, rel), [-1, -1])[1] = dense[identity]
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
    val_set = set()
    for p, g, i in entries:
        key = f"id:{i}" if i >= 0 else f"file:{p}"
        digest = hashlib.sha1(f"{config.split_seed}:{key}".encode()).hexdigest()
        if int(digest[:8], 16) / 0xFFFFFFFF < config.val_fraction:
            val_set.add(p)
    train_e = [e for e in entries if e[0] not in val_set]
    val_e = [e for e in entries if e[0] in val_set]
    if not train_e:
        raise PretrainError("no training images left after the validation split")
    if config.val_fraction > 0 and not val_e:
        raise PretrainError(f"--val_fraction={config.val_fraction} left no validation image; "
                            "raise it or use more images")
    return PretrainData(train_e, val_e, test, identities, pairs, dirs)


def group_names_of(list_dir: str, age_groups: int) -> List[str]:
    try:
        with open(os.path.join(list_dir, "summary.json"), encoding="utf-8") as f:
            names = json.load(f).get("group_names")
        if isinstance(names, list) and len(names) == age_groups:
            return [str(n) for n in names]
    except (OSError, ValueError):
        pass
    return [str(k) for k in range(age_groups)]


def class_weights(counts: Sequence[int], power: float) -> np.ndarray:
    """Per-group loss weights ~ (1 / frequency) ** power, normalised to mean 1 over the
    training samples (so the loss scale does not change); 0 for absent groups."""
    counts = np.asarray(counts, np.float64)
    weights = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    mean = (weights * counts).sum() / counts.sum()
    return (weights / mean).astype(np.float32)


def _load_227(path):
    image = pixels.decode_image(tf.io.read_file(path))
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
_DROPOUT = 8  # + layer index (0..4)


def _seed_of(seed, counter, stream):
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


def _to_input(x):
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
                slot, _seed_of(seed, draw, _GROUP), tf.constant(count - 1, tf.int64))
            size = tf.gather(sizes, which)
            epoch, position = draw // size, draw % size
            shuffled = tf.random.experimental.index_shuffle(
                position, _seed_of(seed, epoch * count + which, _MEMBER), size - 1)
            return tf.gather(flat, tf.gather(offsets, which) + shuffled)
        return index

    total = tf.constant(len(entries), tf.int64)

    def index(n):
        epoch, position = n // total, n % total
        return tf.random.experimental.index_shuffle(position, _seed_of(seed, epoch, _ORDER),
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
            x = _augment(image, config, _seed_of(config.seed, n, _AUGMENT))
        else:
            x = tf.cast(image, tf.float32)
        if config.class_balance == "weights":
            w = tf.gather(weight_table, tf.maximum(group, 0))
        else:
            w = tf.constant(1.0)
        w = tf.where(group >= 0, w, 0.0)  # no age label: no age loss
        return _to_input(x), group, identity, w

    ds = tf.data.Dataset.range(start_sample, 2**62).map(
        sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(2)


def make_eval_dataset(entries, root: str, batch_size: int, cache: bool = True):
    paths = [os.path.join(root, p) for p, _, _ in entries]
    ds = tf.data.Dataset.from_tensor_slices(
        (paths, np.array([g for _, g, _ in entries], np.int32)))
    ds = ds.map(lambda p, g: (_to_input(tf.cast(_load_227(p), tf.float32)), g),
                num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    return ds.batch(batch_size).prefetch(1)


def check_images_exist(entries, root: str, what: str) -> None:
    missing = [p for p, _, _ in entries if not os.path.isfile(os.path.join(root, p))]
    if missing:
        raise PretrainError(f"{len(missing)} {what} image(s) missing under {root}, e.g. "
                            f"{os.path.join(root, missing[0])}")


# ----------------------------------------------------------------------------- model

def forward(alexnet, images, training: bool = False, dropout: float = 0.0,
            identity: bool = False, seed=None) -> Dict[str, tf.Tensor]:
    """AlexNet's age (and identity) logits with dropout on the fc layers while training.

    With ``training=False`` (or ``dropout=0``) this is exactly ``AlexNet.call``'s arithmetic
    (same layers, pools and LRN); the GAN itself never uses dropout. ``seed`` (shape [2]:
    ``(config.seed, step)``) makes the dropout masks stateless: the same for the same seed and
    step, also after a resume; None draws them from TF's global generator.

    Inputs smaller than 227 (the low-resolution phase of pretraining, e.g. 131 -> pool5 3x3)
    have their pool5 map repeated to 6x6 (nearest) so the same fc layers apply; at 227 this
    is the identity.
    """
    a = alexnet

    def drop(t, layer):
        if not training or dropout <= 0:
            return t
        if seed is None:
            return tf.nn.dropout(t, rate=dropout)
        return tf.nn.experimental.stateless_dropout(
            t, rate=dropout, seed=_seed_of(seed[0], seed[1], _DROPOUT + layer))

    x = tf.cast(images, a.compute_dtype)
    x = a._lrn(a._pool(tf.nn.relu(a.conv1(x))))
    x = a._lrn(a._pool(tf.nn.relu(a.conv2(x))))
    x = tf.nn.relu(a.conv3(x))
    x = tf.nn.relu(a.conv4(x))
    x = tf.nn.relu(a.conv5(x))
    out = {"conv5": x}
    pool5 = a._pool(x)
    if pool5.shape[1] != 6 or pool5.shape[2] != 6:
        rows = [i * pool5.shape[1] // 6 for i in range(6)]
        cols = [i * pool5.shape[2] // 6 for i in range(6)]
        pool5 = tf.gather(tf.gather(pool5, rows, axis=1), cols, axis=2)
    flat = tf.reshape(pool5, [-1, 6 * 6 * 256])
    y = drop(tf.nn.relu(a.age_fc6(flat)), 0)
    y = drop(tf.nn.relu(a.age_fc7(y)), 1)
    out["age_logits"] = tf.cast(a.age_fc8(y), tf.float32)
    if identity:
        z = drop(tf.nn.relu(a.fc6(flat)), 2)
        z = drop(tf.nn.relu(a.fc7(z)), 3)
        z = drop(tf.nn.relu(a.new_1(z)), 4)
        out["identity_logits"] = tf.cast(a.new_2(z), tf.float32)
    return out


def trained_layers(identity: bool, age: bool = True, train_layers: str = "auto") -> Tuple[str, ...]:
    """The layers a run updates: ``age_head`` only the age head (``age_fc6..8``, on a frozen
    trunk: how the release's age classifier sat on its identity net); ``auto`` the trunk and
    the heads whose labels the data has."""
    if train_layers == "age_head":
        return checkpoints.ALEXNET_AGE
    layers = checkpoints.ALEXNET_TRUNK
    layers += checkpoints.ALEXNET_AGE if age else ()
    return layers + checkpoints.ALEXNET_IDENTITY if identity else layers


def initialise_alexnet(alexnet, config: PretrainConfig, sample_images=None,
                       print_fn: Callable = print) -> str:
    """Fills a built AlexNet from ``config.init_from`` (bvlc .npy, TF1 or TF2 checkpoint), or
    for scratch: He-normal kernels, rescaled on ``sample_images`` so every layer's
    pre-activation has unit standard deviation (data-dependent init; the release's
    0.02 truncated normal on 0..255-scale inputs trains slowly without batch norm).
    Returns a one-line description."""
    from face_aging import pretrained_formats

    source = config.init_from
    if source:
        if source.endswith((".npy", ".pkl", ".pickle")):
            try:
                names = pretrained_formats.load_bvlc_alexnet(source, alexnet,
                                                             conv1_rgb=config.conv1_rgb)
            except (pretrained_formats.PretrainedFormatError,
                    pretrained_formats.UnsafePickleError) as e:
                raise PretrainError(str(e)) from None
            return f"bvlc_alexnet.npy {source}: {', '.join(names)}"
        loaded = []
        try:
            checkpoints.load_alexnet_layers(source, alexnet, checkpoints.ALEXNET_TRUNK)
            loaded += checkpoints.ALEXNET_TRUNK
            for group in (checkpoints.ALEXNET_IDENTITY, checkpoints.ALEXNET_AGE):
                try:
                    checkpoints.load_alexnet_layers(source, alexnet, group)
                    loaded += group
                except checkpoints.CheckpointMismatchError:
                    pass  # this file lacks that head: it starts fresh
        except (FileNotFoundError, checkpoints.CheckpointMismatchError,
                tf.errors.OpError) as e:
            raise PretrainError(f"--init_from: {str(e).splitlines()[0]}") from None
        return f"checkpoint {source}: {', '.join(loaded)}"
    rng = np.random.default_rng(config.seed)
    for name in checkpoints.ALEXNET_LAYERS:
        layer = getattr(alexnet, name)
        shape = tuple(layer.kernel.shape)
        fan_in = int(np.prod(shape[:-1]))
        layer.kernel.assign(rng.normal(0.0, math.sqrt(2.0 / fan_in), shape).astype(np.float32))
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    if config.data_scale_init and sample_images is not None:
        _unit_scale(alexnet, sample_images)
    # small age/identity logits at the start
    for name in ("age_fc8", "new_2"):
        layer = getattr(alexnet, name)
        layer.kernel.assign(layer.kernel * 0.1)
    return "scratch (He normal" + (", data-dependent unit scaling)" if config.data_scale_init
                                   and sample_images is not None else ")")


def _unit_scale(alexnet, images):
    """Layer by layer (LSUV-like): divide each kernel by the std of its pre-activation."""
    a = alexnet
    x = tf.convert_to_tensor(images, tf.float32)

    def fix(layer, inputs):
        y = layer(inputs)
        std = float(tf.math.reduce_std(y))
        if std > 0:
            layer.kernel.assign(layer.kernel / std)
        return tf.nn.relu(layer(inputs))

    h = a._lrn(a._pool(fix(a.conv1, x)))
    h = a._lrn(a._pool(fix(a.conv2, h)))
    h = fix(a.conv3, h)
    h = fix(a.conv4, h)
    h = fix(a.conv5, h)
    flat = tf.reshape(a._pool(h), [-1, 6 * 6 * 256])
    y = fix(a.age_fc6, flat)
    y = fix(a.age_fc7, y)
    fix(a.age_fc8, y)
    z = fix(a.fc6, flat)
    z = fix(a.fc7, z)
    z = fix(a.new_1, z)
    fix(a.new_2, z)


# ----------------------------------------------------------------------------- loop

def lr_at(step: int, progress: float, config: PretrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``final_lr_fraction``."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    floor = peak * config.final_lr_fraction
    progress = min(max(progress, 0.0), 1.0)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def validation_pairs(entries, seed: int, max_same: int = 1000):
    """Verification pairs among the validation people: up to ``max_same`` same-person pairs
    (every pair of a person's images, seeded sample beyond that) and as many different-person
    pairs (seeded). Returns ``(index_0, index_1, same, images)``: indices into ``images``, the
    validation entries that have an identity."""
    images = [e for e in entries if e[2] >= 0]
    by_person: Dict[int, List[int]] = {}
    for k, (_, _, identity) in enumerate(images):
        by_person.setdefault(identity, []).append(k)
    same = [(a, b) for members in by_person.values()
            for i, a in enumerate(members) for b in members[i + 1:]]
    rng = np.random.default_rng(seed)
    if len(same) > max_same:
        same = [same[k] for k in sorted(rng.choice(len(same), max_same, replace=False))]
    different = []
    if len(by_person) >= 2:
        for _ in range(20 * max(len(same), 1)):
            if len(different) >= len(same):
                break
            a, b = rng.integers(0, len(images), 2)
            if images[a][2] != images[b][2]:
                different.append((int(a), int(b)))
    pairs = same + different
    index_0 = np.array([a for a, _ in pairs], np.int64)
    index_1 = np.array([b for _, b in pairs], np.int64)
    labels = np.array([True] * len(same) + [False] * len(different))
    return index_0, index_1, labels, images


def feature_function(alexnet, layer: str) -> Callable:
    """A traced ``images -> [B, features]`` of ``layer``, flattened."""
    @tf.function(reduce_retracing=True)
    def features(x):
        out = alexnet(x, training=False, outputs=(layer,))[layer]
        return tf.reshape(out, [tf.shape(out)[0], -1])

    return features


def validation_auc(alexnet, dataset, pairs, layer: str,
                   features: Optional[Callable] = None) -> float:
    """ROC AUC of face verification on the validation pairs, with ``layer`` features.
    ``features``: :func:`feature_function` of the same network and layer, made once by a
    caller that validates repeatedly (a new one per call would be traced again each time)."""
    from face_aging.metrics import verification

    features = features or feature_function(alexnet, layer)
    feats = np.concatenate([features(x).numpy() for x, _ in dataset])
    distances = verification.pair_distances(feats[pairs[0]], feats[pairs[1]])
    return float(verification.roc_auc(distances, pairs[2]))


def verification_reports(alexnet, pair_files, layer: str, print_fn: Callable = print) -> Dict:
    """Face verification (cross-validated over the folds present) of ``layer`` features on
    each ``verification_pairs.txt``: ``{pairs_file: result}`` without the per-pair rows."""
    from face_aging.metrics import verification

    results = {}
    for pair_file in pair_files:
        result = verification.verify_alexnet(alexnet, pair_file, layer, progress=False)
        result.pop("pair_distances", None)
        results[pair_file] = result
        print_fn(f"verification on {pair_file}: " + verification.format_result(result))
    return results


def predict(alexnet, dataset, size: int = SIZE) -> Tuple[np.ndarray, np.ndarray]:
    """(labels, predicted groups) over an eval dataset (evaluated at ``size``; 227 = real)."""

    @tf.function
    def logits(x):
        if size != SIZE:
            x = tf.image.resize(x, (size, size), antialias=True)
        return forward(alexnet, x, training=False)["age_logits"]

    labels, predictions = [], []
    for x, g in dataset:
        predictions.append(tf.argmax(logits(x), axis=-1).numpy())
        labels.append(g.numpy())
    if not labels:
        return np.zeros([0], np.int64), np.zeros([0], np.int64)
    return np.concatenate(labels).astype(np.int64), np.concatenate(predictions).astype(np.int64)


def _make_optimizer(config: PretrainConfig, variables):
    import keras

    if config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                     weight_decay=config.weight_decay)
        opt.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) == 1])
    else:
        opt = keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=config.momentum,
                                   nesterov=True)
    if precision.uses_loss_scaling(config.mixed_precision):
        opt = keras.optimizers.LossScaleOptimizer(opt)
    opt.build(variables)
    return opt


def _validate(config: PretrainConfig):
    problems = []
    if config.batch_size < 2:
        problems.append("batch_size must be >= 2")
    if config.age_groups < 2:
        problems.append("age_groups must be >= 2")
    if config.max_steps < 1:
        problems.append("max_steps must be >= 1")
    if not 0 <= config.val_fraction < 1:
        problems.append("val_fraction must be in [0, 1)")
    if not 0 <= config.dropout < 1:
        problems.append("dropout must be in [0, 1)")
    if not 0 < config.crop_scale_min <= 1:
        problems.append("crop_scale_min must be in (0, 1]")
    if config.learning_rate <= 0:
        problems.append("learning_rate must be > 0")
    if config.class_balance not in CLASS_BALANCE:
        problems.append(f"class_balance must be one of {CLASS_BALANCE}")
    if config.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {OPTIMIZERS}")
    if config.identity not in IDENTITY_MODES:
        problems.append(f"identity must be one of {IDENTITY_MODES}")
    if config.train_layers not in TRAIN_LAYERS:
        problems.append(f"train_layers must be one of {TRAIN_LAYERS}")
    if config.train_layers == "age_head" and not config.init_from:
        problems.append("train_layers=age_head trains the age head on a frozen trunk: give the "
                        "trunk with init_from")
    from face_aging.models import FEATURE_LAYERS
    if config.verification_layer not in FEATURE_LAYERS:
        problems.append(f"verification_layer must be one of {FEATURE_LAYERS}")
    if config.nan_policy not in NAN_POLICIES:
        problems.append(f"nan_policy must be one of {NAN_POLICIES}")
    if config.init_from and not (os.path.exists(config.init_from)
                                 or os.path.exists(config.init_from + ".index")):
        problems.append(f"init_from {config.init_from}: no such file or checkpoint")
    if problems:
        raise PretrainError("; ".join(problems))


def _checkpoint_bytes(alexnet, variables, optimizer: str) -> int:
    """Disk a save needs at worst: a new training checkpoint (all weights + optimizer slots)
    written before the old one is deleted, plus a new ``pretrained/alexnet-*`` (all weights)."""
    every = sum(int(np.prod(v.shape)) for v in alexnet.variables)
    trained = sum(int(np.prod(v.shape)) for v in variables)
    slots = (2 if optimizer == "adamw" else 1) * trained
    return int((2 * every + slots) * 4 * 1.1)


def _non_finite_line(step: int, flags, latest: Optional[str]) -> str:
    names = ("loss", "identity_loss", "gradients", "weights")
    bad = [n for n, ok in zip(names, flags) if not ok]
    # a non-finite loss makes its gradients non-finite too: name the first cause
    bad = [n for n in bad if n.endswith("loss")] or bad[:1] or ["weights"]
    return (f"step {step}: non-finite {', '.join(bad)}; the step was not applied "
            f"(last good checkpoint: {latest or 'none'})")


def pretrain(config: PretrainConfig, print_fn: Callable[[str], None] = print) -> Dict:
    """Trains (or resumes), early-stops on validation accuracy, writes the best weights as a
    TF2 AlexNet checkpoint and the test report. Returns the report dict, or, when SIGTERM /
    SIGINT ended the run (after writing a checkpoint), ``{"stopped_by": NAME, "step": N}``.

    Output folder:
      ``pretrained/alexnet-STEP``: the best weights (``save_alexnet``): what
      ``train_ipcgan.py --alexnet_pretrained_model / --age_pretrained_model`` take;
      ``train/ckpt-N``: training state for resume (see the module docstring);
      ``tensorboard/``; ``report.json``, ``report.png``; ``pretrain_options.json``.

    Raises:
      PretrainError, TrainingSetupError: before any step, one line saying what is wrong.
      NonFiniteLossError: a step was not finite under ``nan_policy="stop"`` (it was undone,
        nothing written after it; the message names the step, the loss and the last good
        checkpoint).
    """
    from face_aging.models import AlexNet, build_models
    from face_aging.pretrained_formats import write_alexnet_checkpoint

    _validate(config)
    configure_determinism(config.seed, config.deterministic)
    if config.deterministic and config.jit_compile:
        # Measured: under op determinism XLA refuses the max-pool gradient ("do not yet have
        # a deterministic XLA implementation"), on CPU too.
        print_fn("deterministic: the training step runs without XLA (TF has no deterministic "
                 "XLA max-pool gradient)")
        config = dataclasses.replace(config, jit_compile=False)
    if (config.jit_compile and precision.parse_mode(config.mixed_precision) == "bfloat16"
            and not tf.config.list_physical_devices("GPU")):
        # Measured on this project's CPU (AVX-512 BF16), AlexNet at batch 32: bf16 without XLA
        # about 2.5x faster than float32; with XLA no faster than float32 (XLA's CPU
        # convolutions do not use oneDNN's bf16 kernels).
        print_fn("bfloat16 on a CPU: the training step runs without XLA (XLA's CPU "
                 "convolutions gain nothing from bfloat16)")
        config = dataclasses.replace(config, jit_compile=False)
    root = ""  # entries hold their folder's root
    data = read_datasets(config)
    train_e, val_e, test_e, num_ids = data.train, data.val, data.test, data.identities
    layers = trained_layers(data.has_identity, data.has_age, config.train_layers)
    use_identity = data.has_identity and "new_2" in layers
    use_age = data.has_age and "age_fc8" in layers
    check_images_exist(train_e + val_e, root, "training")
    check_images_exist(test_e, root, "test")
    names = group_names_of(data.list_dirs[0], config.age_groups)
    counts = np.bincount([g for _, g, _ in train_e if g >= 0], minlength=config.age_groups)
    weights = class_weights(counts, config.class_balance_power) if use_age else np.zeros(
        config.age_groups, np.float32)

    out = config.output_dir
    train_dir = os.path.join(out, "train")
    pretrained_dir = os.path.join(out, "pretrained")
    with precision.keras_policy(config.mixed_precision):
        alexnet = AlexNet(age_groups=config.age_groups, identities=config.identities)
        build_models(alexnet=alexnet)
    variables = [v for name in layers
                 for v in (getattr(alexnet, name).kernel, getattr(alexnet, name).bias)]
    optimizer = _make_optimizer(config, variables)
    probe_writable([out, train_dir, pretrained_dir, os.path.join(out, "tensorboard")],
                   _checkpoint_bytes(alexnet, variables, config.optimizer))
    for name in os.listdir(pretrained_dir):  # left by a kill during a best-weights write
        if name.startswith(".tmp_alexnet_"):
            shutil.rmtree(os.path.join(pretrained_dir, name), ignore_errors=True)
    write_json_atomic(os.path.join(out, "pretrain_options.json"), dataclasses.asdict(config))

    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    samples_seen = tf.Variable(0, dtype=tf.int64, trainable=False)
    best_acc = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
    best_step = tf.Variable(0, dtype=tf.int64, trainable=False)
    bad_evals = tf.Variable(0, dtype=tf.int64, trainable=False)
    elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    state = tf.train.Checkpoint(alexnet=alexnet, optimizer=optimizer, step=step_var,
                                samples_seen=samples_seen, best_acc=best_acc,
                                best_step=best_step, bad_evals=bad_evals, elapsed=elapsed)
    manager = tf.train.CheckpointManager(state, train_dir, max_to_keep=1)

    print_fn(f"data: {len(train_e)} train, {len(val_e)} validation, {len(test_e)} test images "
             f"from {', '.join(data.list_dirs)}; train per age group {counts.tolist()}"
             + (f"; {num_ids} identities" if use_identity else "; identity head not trained")
             + f"; training {', '.join(layers)}")
    if config.class_balance == "weights" and use_age:
        print_fn("class loss weights: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights)))

    images = load_images(train_e, root, print_fn)
    if manager.latest_checkpoint:
        state.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        if int(samples_seen) == 0 and int(step_var) > 0:  # a checkpoint from before the counter
            samples_seen.assign(int(step_var) * config.batch_size)
        print_fn(f"resumed from {manager.latest_checkpoint} at step {int(step_var)} "
                 f"(best validation accuracy {float(best_acc):.4f} at step {int(best_step)})")
    else:
        sample = None
        if not config.init_from:
            sample = _to_input(tf.cast(images[:64], tf.float32))
        print_fn("init: " + initialise_alexnet(alexnet, config, sample, print_fn))
    images = tf.Variable(images, trainable=False, name="train_images")  # the pipeline's copy
    val_age = [e for e in val_e if e[1] >= 0]
    val_ds = make_eval_dataset(val_age, root, config.eval_batch_size) if val_age and use_age \
        else None
    val_pairs = validation_pairs(val_e, config.split_seed) if use_identity else None
    if val_pairs is not None and not val_pairs[2].any():
        val_pairs = None  # no validation person has two images
    val_id_ds = make_eval_dataset(val_pairs[3], root, config.eval_batch_size) \
        if val_pairs is not None else None
    val_features = feature_function(alexnet, config.verification_layer) \
        if val_id_ds is not None else None

    smoothing = config.label_smoothing

    def ce(logits, labels, depth):
        target = tf.one_hot(labels, depth)
        target = target * (1 - smoothing) + smoothing / depth
        return tf.nn.softmax_cross_entropy_with_logits(target, logits)

    state_vars = variables + list(optimizer.variables)

    def train_step_fn(x, age, identity, w, seed, poison):
        # Everything a step changes, to undo it if any number comes out non-finite.
        saved = [tf.identity(v) for v in state_vars]
        with tf.control_dependencies(saved):
            with tf.GradientTape() as tape:
                out_ = forward(alexnet, x, training=True, dropout=config.dropout,
                               identity=use_identity, seed=seed)
                age_ce = ce(out_["age_logits"], age, config.age_groups)
                loss = tf.reduce_sum(w * age_ce) / tf.maximum(tf.reduce_sum(w), 1e-12) + poison
                id_loss = tf.constant(0.0)
                if use_identity:
                    mask = tf.cast(identity >= 0, tf.float32)
                    id_ce = ce(out_["identity_logits"], tf.maximum(identity, 0),
                               config.identities)
                    id_loss = tf.reduce_sum(mask * id_ce) / tf.maximum(tf.reduce_sum(mask), 1.0)
                    loss = loss + config.identity_weight * id_loss
                if config.optimizer == "sgd" and config.weight_decay > 0:
                    loss_opt = loss + 0.5 * config.weight_decay * tf.add_n(
                        [tf.reduce_sum(tf.square(v)) for v in variables if len(v.shape) > 1])
                else:
                    loss_opt = loss
                if precision.uses_loss_scaling(config.mixed_precision):
                    loss_opt = optimizer.scale_loss(loss_opt)
            grads = tape.gradient(loss_opt, variables)
            optimizer.apply_gradients(zip(grads, variables))
        flags = [tf.reduce_all(tf.math.is_finite(loss)), tf.reduce_all(tf.math.is_finite(id_loss)),
                 tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in grads]))]
        with tf.control_dependencies(flags):
            flags.append(tf.reduce_all(tf.stack(
                [tf.reduce_all(tf.math.is_finite(v)) for v in variables])))
        flags = tf.stack(flags)

        def undo():
            for variable, value in zip(state_vars, saved):
                variable.assign(value)
            return tf.constant(False)

        finite = tf.cond(tf.reduce_all(flags), lambda: tf.constant(True), undo)
        labelled = tf.cast(age >= 0, tf.float32)
        correct = tf.reduce_sum(labelled * tf.cast(tf.equal(
            tf.argmax(out_["age_logits"], -1, output_type=tf.int32), age), tf.float32)) / (
            tf.maximum(tf.reduce_sum(labelled), 1.0))
        return loss, id_loss, correct, finite, flags

    compiled_step = tf.function(train_step_fn, jit_compile=config.jit_compile)
    shrink = tf.function(lambda x, size: tf.image.resize(x, (size, size), antialias=True))

    def train_step(x, age, identity, w, size, done):
        """Step number ``done + 1``; its dropout is keyed on ``(seed, done)``."""
        if size != SIZE:
            x = shrink(x, size)
        poison = float("nan") if done + 1 in config.nan_at_steps else 0.0
        return compiled_step(x, age, identity, w, tf.constant([config.seed, done], tf.int64),
                             tf.constant(poison, tf.float32))

    writer = tf.summary.create_file_writer(os.path.join(out, "tensorboard"))
    budget = config.time_budget_minutes * 60.0
    start_step = int(step_var)
    t_start, elapsed_start = time.time(), float(elapsed)
    step_progress = TrainingProgress(config.max_steps, start_step, config.log_every)
    losses, accs = [], []
    stop_reason = None

    def run_elapsed():
        return elapsed_start + (time.time() - t_start)

    def progress():
        p = int(step_var) / config.max_steps
        if budget > 0:
            p = max(p, run_elapsed() / budget)
        return p

    def low_res_now():
        return config.low_res_size > 0 and progress() < config.low_res_fraction

    def evaluate_and_keep_best():
        nonlocal stop_reason
        if low_res_now():  # the low-resolution phase: show progress, keep nothing
            if val_ds is not None:
                labels, preds = predict(alexnet, val_ds, config.low_res_size)
                rep = classification_report(labels, preds, config.age_groups, names)
                print_fn(f"validation at step {int(step_var)} ({config.low_res_size} px phase): "
                         f"accuracy {rep['accuracy']:.4f}, within one "
                         f"{rep['within_one_accuracy']:.4f}")
            return
        if val_ds is None and val_id_ds is None:
            write_alexnet_checkpoint(alexnet, pretrained_dir, int(step_var))
            best_step.assign(int(step_var))
            return
        parts, shown = [], []
        if val_ds is not None:
            labels, preds = predict(alexnet, val_ds)
            rep = classification_report(labels, preds, config.age_groups, names)
            parts.append(rep["accuracy"])
            shown.append(f"accuracy {rep['accuracy']:.4f}, within one "
                         f"{rep['within_one_accuracy']:.4f}, balanced "
                         f"{rep['balanced_accuracy']:.4f}")
            with writer.as_default():
                tf.summary.scalar("val/accuracy", rep["accuracy"], step=int(step_var))
                tf.summary.scalar("val/within_one_accuracy", rep["within_one_accuracy"],
                                  step=int(step_var))
        if val_id_ds is not None:
            auc = validation_auc(alexnet, val_id_ds, val_pairs, config.verification_layer,
                                 val_features)
            parts.append(auc)
            shown.append(f"{config.verification_layer} verification AUC {auc:.4f} "
                         f"({int(val_pairs[2].sum())} same / {int((~val_pairs[2]).sum())} "
                         "different pairs)")
            with writer.as_default():
                tf.summary.scalar("val/verification_auc", auc, step=int(step_var))
        acc = float(np.mean(parts))  # the selection score: mean of what was measured
        improved = acc > float(best_acc) + config.min_delta
        if improved:
            best_acc.assign(acc)
            best_step.assign(int(step_var))
            bad_evals.assign(0)
            write_alexnet_checkpoint(alexnet, pretrained_dir, int(step_var))
        else:
            bad_evals.assign_add(1)
        if len(parts) > 1:
            shown.append(f"score {acc:.4f}")
        print_fn(f"validation at step {int(step_var)}: " + "; ".join(shown)
                 + (" (best, saved)" if improved else
                    f" (best {float(best_acc):.4f} at step {int(best_step)}; "
                    f"{int(bad_evals)}/{config.patience} without improvement)"))
        if config.patience and int(bad_evals) >= config.patience:
            stop_reason = (f"early stop: no validation improvement in {config.patience} "
                           "evaluations")

    def has_best():
        return os.path.isdir(pretrained_dir) and any(
            f.startswith("alexnet-") and f.endswith(".index") for f in os.listdir(pretrained_dir))

    # A finished run (its last checkpoint was written after its final evaluation) goes
    # straight to the report.
    if start_step >= config.max_steps:
        stop_reason = f"reached max_steps={config.max_steps}"
    elif config.patience and val_e and int(bad_evals) >= config.patience:
        stop_reason = "already stopped early (resumed a finished run)"
    elif budget > 0 and run_elapsed() >= budget:
        stop_reason = f"time budget of {config.time_budget_minutes:g} minutes used"
    iterator = iter(make_train_dataset(train_e, images, config, weights, int(samples_seen)))
    current_size = None
    with _StopSignal() as stop:
        while stop_reason is None:
            step = int(step_var)
            optimizer.learning_rate.assign(lr_at(step, progress(), config))
            lr = float(optimizer.learning_rate.numpy())  # as applied (float32)
            size = config.low_res_size if low_res_now() else SIZE
            if size != current_size:
                print_fn(f"step {step}: training at {size}x{size}")
                step_progress.expect_compile()  # a new input side traces the step again
                print_fn(step_progress.compiling_line())
                current_size = size
            x, age, identity, w = next(iterator)
            loss, id_loss, acc, finite, flags = train_step(x, age, identity, w, size, step)
            if not bool(finite):
                line = _non_finite_line(step + 1, flags.numpy(), manager.latest_checkpoint)
                if config.nan_policy == "stop":
                    raise NonFiniteLossError(line)
                print_fn(line + "; skipping it (--nan_policy=skip)")
            else:
                losses.append(float(loss))
                accs.append(float(acc))
            step_var.assign_add(1)
            samples_seen.assign_add(config.batch_size)
            step = int(step_var)
            if step >= config.max_steps:
                stop_reason = f"reached max_steps={config.max_steps}"
            elif budget > 0 and run_elapsed() >= budget:
                stop_reason = f"time budget of {config.time_budget_minutes:g} minutes used"
            final = stop_reason is not None
            if step_progress.step_done(step) or final:  # every log_every steps and every few seconds
                left = step_progress.eta_seconds()
                if budget > 0 and left is not None:
                    left = min(left, budget - run_elapsed())
                mean_loss = float(np.mean(losses)) if losses else float("nan")
                mean_acc = float(np.mean(accs)) if accs else float("nan")
                shown = (f"loss {mean_loss:.4f} train acc {mean_acc:.3f}" if losses
                         else "loss - train acc - (skipped)")
                print_fn(f"step {step}/{config.max_steps} {shown} lr {lr:.2e} | "
                         + step_progress.status(config.batch_size, left))
                with writer.as_default():
                    if losses:
                        tf.summary.scalar("train/loss", mean_loss, step=step)
                        tf.summary.scalar("train/accuracy", mean_acc, step=step)
                    tf.summary.scalar("train/learning_rate", lr, step=step)
                    if step_progress.rate is not None:
                        tf.summary.scalar("train/images_per_second",
                                          step_progress.rate * config.batch_size, step=step)
                    if use_identity:
                        tf.summary.scalar("train/identity_loss", float(id_loss), step=step)
                losses, accs = [], []
            if step % config.eval_every == 0 or final:
                evaluate_and_keep_best()  # may set stop_reason (early stop)
            if stop_reason is not None and not has_best():
                write_alexnet_checkpoint(alexnet, pretrained_dir, step)
                best_step.assign(step)
            # The final state (after the final evaluation) is always saved, so that a rerun
            # of a finished run, or of one killed after it, changes nothing.
            if (step % config.save_every == 0 or stop_reason is not None
                    or stop.received):
                elapsed.assign(run_elapsed())
                manager.save(checkpoint_number=step)
            if stop.received and stop_reason is None:
                writer.flush()
                print_fn(f"{stop.received} received: checkpoint written at step {step} "
                         f"({manager.latest_checkpoint}), exiting; run the same command to "
                         "resume")
                return {"stopped_by": stop.received, "step": step}
    writer.flush()
    if not has_best():  # e.g. resumed a run that ended before this version kept one
        write_alexnet_checkpoint(alexnet, pretrained_dir, int(step_var))
        best_step.assign(int(step_var))
    print_fn(f"stopped: {stop_reason}")

    best = os.path.join(pretrained_dir, f"alexnet-{int(best_step)}")
    if not os.path.exists(best + ".index"):
        best = checkpoints.resolve_checkpoint(pretrained_dir)
    checkpoints.load_alexnet_layers(best, alexnet, checkpoints.ALEXNET_LAYERS)
    report: Dict = {}
    if test_e:
        labels, preds = predict(alexnet, make_eval_dataset(test_e, root, config.eval_batch_size,
                                                           cache=False))
        report = classification_report(labels, preds, config.age_groups, names)
    report["verification"] = verification_reports(alexnet, data.verification_pairs,
                                                  config.verification_layer, print_fn)
    train_seconds = float(elapsed)
    steps = int(step_var)
    report.update({
        "split": "test",
        "checkpoint": best,
        "best_step": int(best_step),
        "best_validation_accuracy": float(best_acc) if val_e else None,
        "validation_score": ("mean of age accuracy and verification AUC" if val_ds is not None
                             and val_id_ds is not None else "verification AUC"
                             if val_id_ds is not None else "age accuracy"),
        "steps": steps,
        "batch_size": config.batch_size,
        "training_seconds": train_seconds,
        "images_per_second": steps * config.batch_size / train_seconds if train_seconds else None,
        "stop_reason": stop_reason,
        "train_images": len(train_e), "validation_images": len(val_e),
        "identity_trained": use_identity, "identities": num_ids if use_identity else 0,
        "trained_layers": list(layers), "list_dirs": data.list_dirs,
        "init": config.init_from or "scratch",
    })
    if test_e:
        write_report(report, os.path.join(out, "report.json"), os.path.join(out, "report.png"),
                     title=f"AlexNet age classifier, test split ({len(test_e)} images), "
                           f"step {int(best_step)}")
        print_fn(f"test: accuracy {report['accuracy']:.4f}, within one "
                 f"{report['within_one_accuracy']:.4f}, per-group recall "
                 + ", ".join(f"{g['name']} {g['recall']:.3f}" if g["recall"] is not None
                             else f"{g['name']} -" for g in report["per_group"]))
    else:
        write_json_atomic(os.path.join(out, "report.json"), report)
    print_fn(f"wrote {best} (use --alexnet_pretrained_model={best} "
             f"--age_pretrained_model={best}) and {os.path.join(out, 'report.json')}")
    return report
