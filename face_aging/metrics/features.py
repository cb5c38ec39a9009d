"""Feature networks for FID/KID (and class probabilities for the Inception Score).

- :class:`InceptionFeatures`: Keras' ``InceptionV3`` built with ``weights=None`` and
  loaded from a weights file the user names (nothing downloads). The features are the
  2048-d global average pool of the last mixed block ("pool3"), images resized
  bilinearly to 299x299 and scaled to [-1, 1] (``inception_v3.preprocess_input``). With
  the ImageNet top in the file, it also gives the 1000-class softmax for the Inception
  Score. pytorch-fid and TF-GAN use the 2015 TF Inception graph's weights; Keras' ImageNet
  InceptionV3 is a different training, so its FIDs are of the same kind as published ones
  but not equal to them.
- :class:`AlexNetFeatures`: the project's AlexNet (spec §1.3) ``pool5`` ``[6, 6, 256]``,
  averaged over the 6x6 positions to 256-d. Averaging keeps FID tractable: the 9216-d
  flattened pool5 would need a 9216x9216 covariance square root (minutes on 2 cores) whose
  rank is at most the few hundred samples anyway. These numbers are **not comparable to
  published FID**; they only rank models evaluated the same way.

Input of both: uint8 RGB faces ``[N, H, W, 3]``; output: float32 ``[N, D]``.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict

import numpy as np

from face_aging.errors import InputError

INCEPTION_SIZE = 299


class FeatureError(InputError):
    """The feature network's weights are missing or do not fit (one-line message)."""


def _batches(faces: np.ndarray, batch_size: int):
    for start in range(0, len(faces), batch_size):
        yield faces[start:start + batch_size]


class InceptionFeatures:
    """InceptionV3 pool3 features (and softmax when the file has the top).

    Args:
      weights_path: a Keras weights file of ``keras.applications.InceptionV3(
        include_top=True or False, weights=None)`` (``.weights.h5``, or a legacy ``.h5``
        such as Keras' ``inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5``).
      batch_size: images per forward pass.
    """

    name = "inception_v3_pool3"
    comparable = True

    def __init__(self, weights_path: str, batch_size: int = 32):
        if not os.path.isfile(weights_path):
            raise FeatureError(f"{weights_path}: InceptionV3 weights file not found")
        import keras  # imported here: FeatureError must be importable without TensorFlow

        self.weights_path = weights_path
        self.batch_size = int(batch_size)
        errors = []
        self.has_top = False
        for include_top in (True, False):
            model = keras.applications.InceptionV3(
                include_top=include_top, weights=None,
                pooling=None if include_top else "avg",
                input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    model.load_weights(weights_path)
                # Keras may only warn when parts of a file do not match ("Skipping ...",
                # "... retain their freshly-initialized weights"): that is no fit either.
                partial = [str(w.message) for w in caught
                           if "Skipping" in str(w.message) or "freshly-initialized" in str(w.message)]
                if partial:
                    raise ValueError(partial[0])
            except Exception as e:  # wrong variant: try the other one
                errors.append(f"include_top={include_top}: {str(e).splitlines()[0][:200]}")
                continue
            self.has_top = include_top
            if include_top:
                pool = model.get_layer("avg_pool").output
                self._model = keras.Model(model.input, [pool, model.output])
            else:
                self._model = model
            break
        else:
            raise FeatureError(f"{weights_path}: not InceptionV3 weights ({'; '.join(errors)})")

    def _forward(self, faces) -> tuple:
        import tensorflow as tf

        pools, probs = [], []
        for batch in _batches(np.asarray(faces), self.batch_size):
            x = tf.image.resize(tf.cast(batch, tf.float32), (INCEPTION_SIZE, INCEPTION_SIZE),
                                method="bilinear")
            out = self._model(x / 127.5 - 1.0, training=False)
            if self.has_top:
                pools.append(np.asarray(out[0]))
                probs.append(np.asarray(out[1]))
            else:
                pools.append(np.asarray(out))
        pool = np.concatenate(pools) if pools else np.zeros((0, 2048), np.float32)
        return pool, (np.concatenate(probs) if probs else None)

    def __call__(self, faces) -> np.ndarray:
        """uint8 RGB ``[N, H, W, 3]`` -> float32 ``[N, 2048]``."""
        return self._forward(faces)[0]

    def features_and_probabilities(self, faces):
        """``([N, 2048], [N, 1000] softmax or None without the top)``."""
        return self._forward(faces)

    def describe(self) -> Dict[str, object]:
        return {"name": self.name, "weights": os.path.abspath(self.weights_path),
                "dims": 2048, "input": "bilinear 299x299, [-1, 1]", "has_top": self.has_top,
                "comparable_to_published_fid": True}


class AlexNetFeatures:
    """Spatially averaged ``pool5`` of the project's AlexNet (256-d); see the module docstring.

    Args:
      alexnet: a ``face_aging.backbones.alexnet.AlexNet`` (or any callable taking RGB-minus-mean
        227x227 images and ``outputs=("pool5",)``, returning ``{"pool5": [B, 6, 6, 256]}``).
      weights_note: where its weights came from (for the report).
    """

    name = "alexnet_pool5_avg"
    comparable = False

    def __init__(self, alexnet, weights_note: str, batch_size: int = 32):
        self._alexnet = alexnet
        self.weights_note = weights_note
        self.batch_size = int(batch_size)

    def __call__(self, faces) -> np.ndarray:
        """uint8 RGB ``[N, H, W, 3]`` -> float32 ``[N, 256]``."""
        import tensorflow as tf
        from face_aging import pixels

        out = []
        for batch in _batches(np.asarray(faces), self.batch_size):
            x = pixels.subtract_mean(pixels.resize_tf1(
                tf.cast(batch, tf.float32), (pixels.ALEXNET_SIZE, pixels.ALEXNET_SIZE)))
            pool5 = self._alexnet(x, training=False, outputs=("pool5",))["pool5"]
            pool5 = tf.reshape(pool5, [tf.shape(pool5)[0], -1, 256])
            out.append(np.asarray(tf.reduce_mean(pool5, axis=1)))
        return np.concatenate(out) if out else np.zeros((0, 256), np.float32)

    def features_and_probabilities(self, faces):
        return self(faces), None

    def describe(self) -> Dict[str, object]:
        return {"name": self.name, "weights": self.weights_note, "dims": 256,
                "input": "TF1-grid bilinear 227x227, RGB minus MEAN_RGB",
                "comparable_to_published_fid": False,
                "note": "AlexNet pool5 averaged over 6x6: NOT comparable to published FID"}
