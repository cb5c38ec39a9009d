"""Shared fixtures: a tiny dataset in the release's list layout, the ../shared data location."""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from face_aging.data import lists  # noqa: E402


def group_colour(group: int) -> int:
    """Grey level of the synthetic faces of a group (lets tests tell groups apart by pixels)."""
    return 30 + 40 * group


def make_list_dataset(root: Path, per_group: int = 3, age_groups: int = 5, size: int = 40,
                      pairs=((1, 0), (4, 2), (3, 1), (0, 3), (2, 4))) -> Path:
    """Writes a tiny dataset: per group ``per_group`` JPEGs of flat grey ``group_colour(k)``
    plus mild noise, ``train.txt``, ``train_age_group_k.txt``, ``train_label_pair.txt``."""
    rng = np.random.default_rng(0)
    entries = []
    for group in range(age_groups):
        for i in range(per_group):
            rel = f"faces/g{group}_{i}.png"
            image = np.full((size, size, 3), group_colour(group), np.uint8)
            image[::4, ::4] = rng.integers(0, 255, image[::4, ::4].shape, dtype=np.uint8) // 8 \
                + group_colour(group)
            (root / "faces").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / rel)
            entries.append((rel, group))
    lists.write_image_list(str(root / lists.TRAIN_LIST), entries)
    for group in range(age_groups):
        lists.write_image_list(str(root / lists.age_group_list("train", group)),
                               [e for e in entries if e[1] == group])
    lists.write_label_pairs(str(root / lists.LABEL_PAIR_LIST), list(pairs))
    return root


@pytest.fixture
def tiny_dataset(tmp_path):
    return make_list_dataset(tmp_path / "data")


def write_tf1_checkpoint(prefix: str, values: dict) -> str:
    """Saves ``{tf1_name: ndarray}`` as a TF1 name-based checkpoint, the way the release did:
    ``tf.compat.v1`` variables in a graph, written by a ``tf.compat.v1.train.Saver``."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.get_variable(
            name, shape=np.shape(v), dtype=tf.float32,
            initializer=tf.compat.v1.zeros_initializer()) for name, v in values.items()}
        saver = tf.compat.v1.train.Saver(list(variables.values()))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for name, variable in variables.items():  # fed, not baked into the graph
                variable.load(values[name], session)
            return saver.save(session, prefix, write_meta_graph=False)
