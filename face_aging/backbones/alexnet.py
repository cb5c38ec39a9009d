"""The release's AlexNet (spec §1.3) and its weights: the frozen loss network of IPCGAN, the
network AlexNet pretraining trains, and the feature network of ``face_aging.metrics``.

- :class:`AlexNet`: a Keras subclassed model with the identity and age heads;
- :func:`release_rows`: the release's TF1 scope of each layer (``alexnet/conv1`` ...);
- :func:`load_alexnet_layers`: some layers from a release TF1 file or this project's TF2
  checkpoint; :func:`save_alexnet`: a TF2 checkpoint holding only ``alexnet``.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import keras
import tensorflow as tf

from face_aging import checkpoints, pixels
from face_aging.backbones import ALEXNET_LAYERS, ALEXNET_OUTPUTS
from face_aging.layers import Conv, Dense


class AlexNet(keras.Model):
    """AlexNet with identity and age heads (spec §1.3); frozen during GAN training.

    Call: ``a(images_227, training=False, outputs=None)``.

    Args (call):
      images_227: ``[B, 227, 227, 3]`` float32, RGB 0..255 minus ``pixels.MEAN_RGB``.
      outputs: names to compute (default all of ``ALEXNET_OUTPUTS``); asking only for what
        is needed skips the unused heads.
    Returns:
      dict name -> tensor: ``conv3``/``conv4`` ``[B,13,13,384]``, ``conv5`` ``[B,13,13,256]``,
      ``pool5`` ``[B,6,6,256]``, ``fc6``/``fc7`` ``[B,4096]`` (all after their relu),
      ``identity_logits`` ``[B,identities]``, ``age_logits`` ``[B,age_groups]``.
    """

    def __init__(self, age_groups=5, identities=2000, name="alexnet"):
        super().__init__(name=name)
        self.conv1 = Conv(96, 11, 4, "VALID", rewrite_gradients=True, name="conv1")
        self.conv2 = Conv(256, 5, 1, groups=2, name="conv2")
        self.conv3 = Conv(384, 3, 1, name="conv3")
        self.conv4 = Conv(384, 3, 1, groups=2, name="conv4")
        self.conv5 = Conv(256, 3, 1, groups=2, name="conv5")
        self.fc6 = Dense(4096, name="fc6")
        self.fc7 = Dense(4096, name="fc7")
        self.new_1 = Dense(256, name="new_1")
        self.new_2 = Dense(identities, name="new_2")
        self.age_fc6 = Dense(4096, name="age_fc6")
        self.age_fc7 = Dense(4096, name="age_fc7")
        self.age_fc8 = Dense(age_groups, name="age_fc8")

    @staticmethod
    def pool(x):
        """The release's max pool: 3x3, stride 2, VALID."""
        return tf.nn.max_pool2d(x, 3, 2, "VALID")

    @staticmethod
    def lrn(x):
        """The release's local response normalisation (depth radius 2, alpha 2e-5, beta 0.75)."""
        # Computed in float32 under a mixed policy: TF has no CPU LRN kernel for bfloat16.
        y = tf.nn.local_response_normalization(tf.cast(x, tf.float32), depth_radius=2,
                                               alpha=2e-5, beta=0.75, bias=1.0)
        return tf.cast(y, x.dtype)

    def call(self, images_227, training=False, outputs=None):
        wanted = set(ALEXNET_OUTPUTS if outputs is None else outputs)
        unknown = wanted - set(ALEXNET_OUTPUTS)
        if unknown:
            raise ValueError(f"AlexNet has no output(s) {sorted(unknown)}; "
                             f"choose from {ALEXNET_OUTPUTS}")
        out = {}
        x = tf.cast(images_227, self.compute_dtype)
        x = self.lrn(self.pool(tf.nn.relu(self.conv1(x))))
        x = self.lrn(self.pool(tf.nn.relu(self.conv2(x))))
        out["conv3"] = x = tf.nn.relu(self.conv3(x))
        out["conv4"] = x = tf.nn.relu(self.conv4(x))
        out["conv5"] = x = tf.nn.relu(self.conv5(x))
        out["pool5"] = pool5 = self.pool(x)
        flat = tf.reshape(pool5, [-1, 6 * 6 * 256])
        if wanted & {"fc6", "fc7", "identity_logits"}:
            out["fc6"] = x = tf.nn.relu(self.fc6(flat))
            out["fc7"] = x = tf.nn.relu(self.fc7(x))
            if "identity_logits" in wanted:
                out["identity_logits"] = self.new_2(tf.nn.relu(self.new_1(x)))
        if "age_logits" in wanted:
            y = tf.nn.relu(self.age_fc6(flat))
            y = tf.nn.relu(self.age_fc7(y))
            out["age_logits"] = self.age_fc8(y)
        return {k: tf.cast(v, tf.float32) for k, v in out.items() if k in wanted}


def build_alexnet(alexnet) -> None:
    """Creates all variables of ``alexnet`` by one call on zeros, every head included."""
    alexnet(tf.zeros([1, pixels.ALEXNET_SIZE, pixels.ALEXNET_SIZE, 3]), training=False)


def release_rows(alexnet, layers: Sequence[str] = ALEXNET_LAYERS) -> List[Tuple[str, object]]:
    """The release's scope of each of ``layers``: ``[("alexnet/conv1", alexnet.conv1), ...]``."""
    rows = []
    for name in layers:
        if name not in ALEXNET_LAYERS:
            raise ValueError(f"unknown AlexNet layer {name!r}; choose from {ALEXNET_LAYERS}")
        rows.append((f"alexnet/{name}", getattr(alexnet, name)))
    return rows


def load_alexnet_layers(path: str, alexnet, layers: Sequence[str]) -> List[str]:
    """Loads some AlexNet layers from a release TF1 file or this project's TF2 checkpoint.

    A TF2 checkpoint must hold the AlexNet under the attribute ``alexnet`` (as
    ``save_alexnet`` and ``python -m face_aging.pretrain`` write it).

    Raises:
      CheckpointMismatchError: a requested layer is missing or mis-shaped.
    """
    prefix = checkpoints.resolve_checkpoint(path)
    if not checkpoints.is_tf2_checkpoint(prefix):
        return checkpoints.assign_tf1_variables(
            prefix, checkpoints.tf1_variable_map(release_rows(alexnet, layers)))
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    problems, values = [], []
    for layer_name in layers:
        layer = getattr(alexnet, layer_name)
        for attr, variable in (("kernel", layer.kernel), ("bias", layer.bias)):
            key = f"alexnet/{layer_name}/{attr}{checkpoints.TF2_SUFFIX}"
            if key not in shapes:
                problems.append(f"missing alexnet/{layer_name}/{attr}")
            elif tuple(shapes[key]) != tuple(variable.shape):
                problems.append(f"alexnet/{layer_name}/{attr} is {tuple(shapes[key])}, "
                                f"model expects {tuple(variable.shape)}")
            else:
                values.append((variable, reader.get_tensor(key)))
    if problems:
        raise checkpoints.CheckpointMismatchError(
            f"{prefix}: does not match the AlexNet: " + "; ".join(problems))
    for variable, value in values:
        variable.assign(value)
    return list(layers)


def save_alexnet(alexnet, prefix: str) -> str:
    """Writes a TF2 checkpoint holding only ``alexnet`` (weights, no optimizer); returns its path."""
    return tf.train.Checkpoint(alexnet=alexnet).write(prefix)
