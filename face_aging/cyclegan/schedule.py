"""The reference's ``--lr_policy linear`` learning-rate schedule.

The reference builds ``LambdaLR(optimizer, lambda_rule)`` with

    lambda_rule(epoch) = 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1)

and steps the scheduler once at the end of every epoch, so the (0-based) ``epoch``-th
epoch trains with ``lr * lambda_rule(epoch)``. With the defaults (lr 2e-4, n_epochs 100,
n_epochs_decay 100, epoch_count 1): epochs 0..99 at 2e-4, epoch 100 at 2e-4 * 100/101,
..., the last epoch (199) at 2e-4 * 1/101; it reaches 0 where training ends.

(Some later versions of the reference's train.py call the scheduler at the *start* of each
epoch instead, which shifts the schedule one epoch earlier; see docs/CYCLEGAN.md.)
"""
from __future__ import annotations


def linear_multiplier(epoch: int, n_epochs: int = 100, n_epochs_decay: int = 100,
                      epoch_count: int = 1) -> float:
    """The reference's ``lambda_rule`` for 0-based ``epoch``; never below 0 (the reference
    never runs past ``n_epochs + n_epochs_decay`` epochs, where it would go negative)."""
    value = 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)
    return max(0.0, value)


def learning_rate(step: int, steps_per_epoch: int, base_lr: float = 2e-4, n_epochs: int = 100,
                  n_epochs_decay: int = 100) -> float:
    """Learning rate of the (0-based) training step ``step``: its epoch's rate."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    return base_lr * linear_multiplier(step // steps_per_epoch, n_epochs, n_epochs_decay)


def total_steps(steps_per_epoch: int, n_epochs: int = 100, n_epochs_decay: int = 100) -> int:
    """Steps of the whole schedule: ``(n_epochs + n_epochs_decay) * steps_per_epoch``."""
    return (n_epochs + n_epochs_decay) * steps_per_epoch
