"""The release's Adam, shared by the GAN trainers."""
from __future__ import annotations

import keras


def make_adam(learning_rate: float, beta_1=0.5, beta_2=0.999, epsilon=1e-8,
              loss_scale: bool = False) -> keras.optimizers.Optimizer:
    """The release's Adam (TF1 ``AdamOptimizer`` update; epsilon 1e-8, not Keras' 1e-7)."""
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scale else optimizer
