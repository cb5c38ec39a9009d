"""The reference CycleGAN's losses (``GANLoss``, ``backward_D_basic``, ``backward_G``).

``mean`` is over every element (PyTorch's ``MSELoss`` / ``L1Loss`` with mean reduction):
a PatchGAN's score map is judged patch by patch against a target map of ones or zeros.
"""
from __future__ import annotations

from typing import Dict

import tensorflow as tf

#: ``--gan_mode`` values: least squares (the reference's CycleGAN default) or the original
#: cross-entropy GAN (raw scores through a sigmoid, as ``BCEWithLogitsLoss``).
from face_aging.cyclegan.config import GAN_MODES  # TF-free home; still importable from here


def gan_loss(scores: tf.Tensor, target_is_real: bool, mode: str = "lsgan") -> tf.Tensor:
    """``mean((scores - t)^2)`` (lsgan) or ``mean(BCE(sigmoid(scores), t))`` (vanilla),
    with t = 1 for real, 0 for fake."""
    scores = tf.cast(scores, tf.float32)
    target = tf.ones_like(scores) if target_is_real else tf.zeros_like(scores)
    if mode == "lsgan":
        return tf.reduce_mean(tf.square(scores - target))
    if mode == "vanilla":
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target,
                                                                      logits=scores))
    raise ValueError(f"gan mode {mode!r}: choose from {GAN_MODES}")


def discriminator_loss(real_scores, fake_scores, mode: str = "lsgan") -> tf.Tensor:
    """``0.5 * (gan(D(real), real) + gan(D(fake), fake))``: the reference halves D's loss
    "to slow down the rate at which D learns relative to G"."""
    return 0.5 * (gan_loss(real_scores, True, mode) + gan_loss(fake_scores, False, mode))


def l1(a, b) -> tf.Tensor:
    """``mean(|a - b|)`` over every element."""
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))


def generator_losses(real_a, real_b, fake_a, fake_b, rec_a, rec_b, idt_a, idt_b,
                     d_a_fake_b, d_b_fake_a, lambda_a=10.0, lambda_b=10.0,
                     lambda_identity=0.5, mode: str = "lsgan") -> Dict[str, tf.Tensor]:
    """The generators' loss terms, weighted, and their sum ``G``.

    - ``G_A = gan(D_A(G_A(A)), real)``, ``G_B = gan(D_B(G_B(B)), real)``;
    - ``cycle_A = lambda_A * L1(G_B(G_A(A)), A)``, ``cycle_B = lambda_B * L1(G_A(G_B(B)), B)``;
    - ``idt_A = lambda_identity * lambda_B * L1(G_A(B), B)``,
      ``idt_B = lambda_identity * lambda_A * L1(G_B(A), A)`` (0 and not computed when
      ``lambda_identity`` is 0: pass ``idt_a = idt_b = None``).

    Names are the reference's: ``idt_A`` is G_A's identity term (on old faces).
    """
    out = {"G_A": gan_loss(d_a_fake_b, True, mode), "G_B": gan_loss(d_b_fake_a, True, mode),
           "cycle_A": lambda_a * l1(rec_a, real_a), "cycle_B": lambda_b * l1(rec_b, real_b)}
    if lambda_identity > 0:
        out["idt_A"] = lambda_identity * lambda_b * l1(idt_a, real_b)
        out["idt_B"] = lambda_identity * lambda_a * l1(idt_b, real_a)
    else:
        out["idt_A"] = out["idt_B"] = tf.constant(0.0)
    out["G"] = tf.add_n([out[k] for k in ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")])
    return out
