"""IPCGAN losses as pure functions (spec §2). Weights are applied by the caller.

Shapes: discriminator logits ``[B, h, w, c]`` (any scale: raw logits, no sigmoid —
these are least-squares GAN losses); features ``[B, ...]``; age logits ``[B, groups]``.
"""
from __future__ import annotations

import tensorflow as tf


def lsgan_discriminator_loss(d_real_true, d_real_false, d_fake_true) -> tf.Tensor:
    """``0.5 * (mean((D1 - 1)^2) + 0.5 * (mean(D2^2) + mean(D3^2)))``.

    Args:
      d_real_true: D1 = D(real faces of group t, condition t): pushed to 1.
      d_real_false: D2 = D(real faces of group t, condition f != t): pushed to 0.
      d_fake_true: D3 = D(generated faces, condition t): pushed to 0.
    ``mean`` is over every element.
    """
    return 0.5 * (tf.reduce_mean(tf.square(d_real_true - 1.0))
                  + 0.5 * (tf.reduce_mean(tf.square(d_real_false))
                           + tf.reduce_mean(tf.square(d_fake_true))))


def lsgan_generator_loss(d_fake_true) -> tf.Tensor:
    """``0.5 * mean((D3 - 1)^2)``: the generator pushes D(fake, t) to 1."""
    return 0.5 * tf.reduce_mean(tf.square(d_fake_true - 1.0))


def msum(a, b) -> tf.Tensor:
    """Per-sample sum of squared differences, averaged over the batch.

    ``mean_b( sum_{h,w,c} (a_b - b_b)^2 )`` — not an element mean, which is why the
    release's feature weight is as small as 0.5e-4.
    """
    diff = tf.reshape(tf.square(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)),
                      [tf.shape(a)[0], -1])
    return tf.reduce_mean(tf.reduce_sum(diff, axis=1))


def age_classification_loss(age_logits, target_group) -> tf.Tensor:
    """Mean sparse softmax cross-entropy of AlexNet's age logits against the target group."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(target_group, tf.int32), logits=tf.cast(age_logits, tf.float32)))


def l1_to_source(generated, source) -> tf.Tensor:
    """``mean |generated - source|`` over every element, both faces in [-1, 1] (so in
    [0, 2]). Not the release's: the reconstruction start's loss, and ``--l1_loss_weight``'s."""
    return tf.reduce_mean(tf.abs(tf.cast(generated, tf.float32) - tf.cast(source, tf.float32)))
