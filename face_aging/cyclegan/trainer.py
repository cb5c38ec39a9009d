"""CycleGAN training: one step as the reference's ``CycleGANModel.optimize_parameters``, and
the loop of ``train_cyclegan.py``.

One step (``CycleGANTrainer.train_step``), batch ``{"A": young, "B": old}`` in [-1, 1]:

1. forward: ``fake_B = G_A(A)``, ``rec_A = G_B(fake_B)``, ``fake_A = G_B(B)``,
   ``rec_B = G_A(fake_A)``;
2. both generators together (one tape, one Adam over G_A's and G_B's weights): adversarial
   terms against the current D_A/D_B, cycle L1 (x lambda_A, lambda_B), identity L1
   (``G_A(B)`` vs B, ``G_B(A)`` vs A, x lambda_identity x lambda); D is not updated here;
3. both discriminators (one Adam over D_A's and D_B's weights): D_A on real B vs
   ``pool_B.query(fake_B)``, D_B on real A vs ``pool_A.query(fake_A)``, each loss halved.
   The fakes are step 1's, made by the generators before step 2's update, as in the reference.

:func:`train` runs the steps on the engine's one training loop (``face_aging.engine.loop``)
with :class:`CycleGANPlan`: it sets the learning rate of each step from its epoch (the
'linear' policy), and checkpoints G_A, G_B, D_A, D_B, both optimizers, both image pools
(images, count, RNG), the step and epoch, and the input iterator's position; the engine logs,
writes sample strips and TensorBoard scalars/images, stops cleanly on SIGTERM/SIGINT, and
undoes a step with non-finite numbers (``nan_policy``).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

from face_aging import pixels, precision
from face_aging.cyclegan import losses, schedule
from face_aging.cyclegan.config import CycleGANConfig, problems
from face_aging.cyclegan.data import load_domains, make_unaligned_dataset, sample_batches
from face_aging.cyclegan.image_pool import ImagePool
from face_aging.cyclegan.networks import make_networks
from face_aging.engine import loop, samples
from face_aging.engine.hooks import LearningRateHook, SamplesHook
from face_aging.engine.loop import TrainPlan
from face_aging.engine.nonfinite import guarded_step
from face_aging.engine.optim import make_adam
from face_aging.engine.setup import (TrainingSetupError, checkpoint_bytes, configure_determinism,
                                     count_values, probe_writable)
from face_aging.engine.state import IteratorInput, RunState, first_line
from face_aging.files import atomic_write_json

#: Logged losses, in the reference's order (``loss_names``); all weighted as in the total.
LOSS_NAMES = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")


class CycleGANTrainer:
    """Holds G_A, G_B, D_A, D_B, both optimizers and both image pools; ``train_step(batch)``.

    Args:
      g_a, g_b, d_a, d_b: young->old, old->young, judge of old faces, judge of young faces.
      image_shape: ``[H, W, 3]`` of the training crops (the pools' image shape).
      lambda_a, lambda_b, lambda_identity: the reference's weights (10, 10, 0.5).
      gan_mode: ``"lsgan"`` (reference default) or ``"vanilla"``.
      pool_size: images per pool (50); 0 turns the pools off.
      lr, beta1, beta2: Adam (2e-4, 0.5, 0.999; epsilon 1e-8 as PyTorch's).
      seed: seeds the two pools' random generators.
      mixed_precision: the ``face_aging.precision`` mode the networks were built in; float16
        wraps both optimizers in dynamic loss scaling (bfloat16 needs none).
      nan_guard: if any loss or updated weight is not finite, undo the whole step (networks,
        optimizers, pools) and report ``finite=False``.
    """

    def __init__(self, g_a, g_b, d_a, d_b, image_shape, lambda_a=10.0, lambda_b=10.0,
                 lambda_identity=0.5, gan_mode="lsgan", pool_size=50, lr=2e-4, beta1=0.5,
                 beta2=0.999, seed=0, nan_guard=True, mixed_precision="none"):
        if gan_mode not in losses.GAN_MODES:
            raise ValueError(f"gan_mode {gan_mode!r}: choose from {losses.GAN_MODES}")
        for name, value in (("lambda_a", lambda_a), ("lambda_b", lambda_b),
                            ("lambda_identity", lambda_identity)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.g_a, self.g_b, self.d_a, self.d_b = g_a, g_b, d_a, d_b
        self.lambda_a, self.lambda_b = float(lambda_a), float(lambda_b)
        self.lambda_identity, self.gan_mode = float(lambda_identity), gan_mode
        self.loss_scaling = precision.uses_loss_scaling(mixed_precision)
        self.g_optimizer = make_adam(lr, beta_1=beta1, beta_2=beta2, loss_scale=self.loss_scaling)
        self.d_optimizer = make_adam(lr, beta_1=beta1, beta_2=beta2, loss_scale=self.loss_scaling)
        self.pool_a = ImagePool(pool_size, image_shape, seed=seed * 10 + 1, name="pool_a")
        self.pool_b = ImagePool(pool_size, image_shape, seed=seed * 10 + 2, name="pool_b")
        self.nan_guard = nan_guard
        # Adam slots before any step: a checkpoint then restores them at once (not deferred)
        # and the guarded step can snapshot them.
        self.g_optimizer.build(self.g_variables)
        self.d_optimizer.build(self.d_variables)
        self._compiled_step = tf.function(self._guarded_step)

    @property
    def g_variables(self):
        return self.g_a.trainable_variables + self.g_b.trainable_variables

    @property
    def d_variables(self):
        return self.d_a.trainable_variables + self.d_b.trainable_variables

    def set_learning_rate(self, lr: float) -> None:
        self.g_optimizer.learning_rate = lr
        self.d_optimizer.learning_rate = lr

    def train_step(self, batch) -> Dict[str, tf.Tensor]:
        """One G update then one D update; returns the losses of ``LOSS_NAMES`` and ``finite``."""
        return self._compiled_step(batch)

    def state_variables(self):
        models = (self.g_a, self.g_b, self.d_a, self.d_b)
        return ([v for m in models for v in m.variables] + list(self.g_optimizer.variables)
                + list(self.d_optimizer.variables) + self.pool_a.state_variables()
                + self.pool_b.state_variables())

    def _guarded_step(self, batch):
        if not self.nan_guard:
            return self._step(batch)
        return guarded_step(self._step, batch, self.state_variables(),
                            self.g_variables + self.d_variables)

    def _step(self, batch) -> Dict[str, tf.Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        with tf.GradientTape() as g_tape:
            fake_b = self.g_a(real_a)
            rec_a = self.g_b(fake_b)
            fake_a = self.g_b(real_b)
            rec_b = self.g_a(fake_a)
            idt_a = idt_b = None
            if self.lambda_identity > 0:
                idt_a, idt_b = self.g_a(real_b), self.g_b(real_a)
            g = losses.generator_losses(real_a, real_b, fake_a, fake_b, rec_a, rec_b, idt_a,
                                        idt_b, self.d_a(fake_b), self.d_b(fake_a), self.lambda_a,
                                        self.lambda_b, self.lambda_identity, self.gan_mode)
            g_total = self.g_optimizer.scale_loss(g["G"]) if self.loss_scaling else g["G"]
        g_vars = self.g_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_total, g_vars), g_vars))

        pooled_b = self.pool_b.query(tf.stop_gradient(fake_b))
        pooled_a = self.pool_a.query(tf.stop_gradient(fake_a))
        with tf.GradientTape() as d_tape:
            d_a_loss = losses.discriminator_loss(self.d_a(real_b), self.d_a(pooled_b),
                                                 self.gan_mode)
            d_b_loss = losses.discriminator_loss(self.d_b(real_a), self.d_b(pooled_a),
                                                 self.gan_mode)
            d_total = d_a_loss + d_b_loss
            if self.loss_scaling:
                d_total = self.d_optimizer.scale_loss(d_total)
        d_vars = self.d_variables
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_total, d_vars), d_vars))
        out = {"D_A": d_a_loss, "D_B": d_b_loss}
        out.update({k: g[k] for k in ("G_A", "cycle_A", "idt_A", "G_B", "cycle_B", "idt_B")})
        return {k: out[k] for k in LOSS_NAMES}


class SampleStrips:
    """Per sample face a row ``real | translated | reconstructed``: ``young_to_old`` (A -> G_A ->
    G_B) and ``old_to_young`` (B -> G_B -> G_A), as PNGs and TensorBoard images."""

    def __init__(self, g_a, g_b, faces: Dict[str, tf.Tensor], sample_dir: str,
                 summary_writer=None):
        self.g_a, self.g_b, self.faces = g_a, g_b, faces
        self.sample_dir, self.summary_writer = sample_dir, summary_writer

    def strips(self) -> Dict[str, np.ndarray]:
        out = {}
        directions = (("young_to_old", self.faces["A"], self.g_a, self.g_b),
                      ("old_to_young", self.faces["B"], self.g_b, self.g_a))
        for name, real, forward, backward in directions:
            fake = forward(real)
            rec = backward(fake)
            rows = tf.stack([real, fake, rec], axis=1)  # [N, 3, H, W, 3]
            images = tf.reshape(rows, [-1] + rows.shape.as_list()[2:])
            out[name] = samples.image_grid(pixels.to_uint8(images.numpy()), columns=3)
        return out

    def write(self, step: int) -> Dict[str, np.ndarray]:
        strips = self.strips()
        samples.write_step_images(self.sample_dir, step, strips, self.summary_writer)
        return strips


def validate(config: CycleGANConfig) -> None:
    """Raises TrainingSetupError (one line) for options the networks or schedule cannot take:
    the rules of ``face_aging.cyclegan.config`` (the table the flags are validated with)."""
    broken = problems(config.resolved())
    if broken:
        raise TrainingSetupError("; ".join(broken))


class CycleGANPlan(TrainPlan):
    """CycleGAN's part of the engine's loop: the step, the epoch counter (in the checkpoint),
    and progress lines with the epoch and the learning rate of the 'linear' policy."""

    def __init__(self, config: CycleGANConfig, state: RunState, trainer: CycleGANTrainer,
                 epoch: tf.Variable, steps_per_epoch: int, max_steps: int, summary_writer):
        self.state, self.trainer, self.epoch = state, trainer, epoch
        self.steps_per_epoch, self.summary_writer = steps_per_epoch, summary_writer
        self.total_epochs = config.n_epochs + config.n_epochs_decay
        self.max_steps, self.log_interval = max_steps, config.log_interval
        self.save_interval, self.nan_policy = config.save_interval, config.nan_policy
        self.learning_rate = LearningRateHook(
            lambda index: schedule.learning_rate(index, steps_per_epoch, config.lr,
                                                 config.n_epochs, config.n_epochs_decay),
            self._set_learning_rate)

    def _set_learning_rate(self, lr: float) -> float:
        self.trainer.set_learning_rate(lr)
        return lr

    def step(self, batch, index: int) -> Dict[str, tf.Tensor]:
        return self.trainer.train_step(batch)

    def after_update(self, loop, current: int, out, finite: bool) -> None:
        self.epoch.assign((current - 1) // self.steps_per_epoch)

    def log_fields(self, current: int) -> str:
        epoch = (current - 1) // self.steps_per_epoch
        return f"epoch {epoch + 1}/{self.total_epochs}  lr {self.learning_rate.lr:.3g}  "

    def scalars(self, current: int) -> Dict[str, float]:
        return {"learning_rate": self.learning_rate.lr}

    def finish(self, outcome) -> Dict:
        result = super().finish(outcome)
        result.update(epoch=int(self.epoch.numpy()), lr=self.learning_rate.lr)
        return result


def _resume_failed(latest: str, error: BaseException) -> str:
    return (f"{latest}: cannot resume this run from it (other networks, pool or data?): "
            f"{first_line(error)}")


def train(config: CycleGANConfig, print_fn: Callable[[str], None] = print) -> Dict[str, float]:
    """Runs (or resumes from ``checkpoint_dir``) training to ``max_steps`` (default: the whole
    schedule, ``(n_epochs + n_epochs_decay) * steps_per_epoch``) on the engine's loop.

    Returns:
      the last logged losses, ``step``, ``epoch`` (0-based), ``lr``, and ``stopped_by`` if a
      signal ended the run.
    Raises:
      TrainingSetupError, DataError: before any step, one line saying what is wrong.
      NonFiniteLossError: a step was not finite under ``nan_policy="stop"``.
    """
    validate(config)
    config = config.resolved()
    configure_determinism(config.seed, config.deterministic)
    domains = load_domains(config.young_dir, config.old_dir, config.age_list,
                           config.age_list_root, config.young_max_age, config.old_min_age,
                           config.max_dataset_size, config.batch_size)
    print_fn(domains.summary())
    steps_per_epoch = domains.steps_per_epoch(config.batch_size)
    schedule_steps = schedule.total_steps(steps_per_epoch, config.n_epochs, config.n_epochs_decay)
    max_steps = config.max_steps or schedule_steps
    if max_steps > schedule_steps:
        print_fn(f"max_steps {max_steps} goes past the schedule's {schedule_steps} steps: "
                 "the learning rate is 0 from there on")
    dataset = make_unaligned_dataset(domains, config.batch_size, config.crop_size,
                                     config.load_size, not config.no_flip, config.seed)
    trainer = _make_trainer(config)
    epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
    state = RunState(dict(g_a=trainer.g_a, g_b=trainer.g_b, d_a=trainer.d_a, d_b=trainer.d_b,
                          g_optimizer=trainer.g_optimizer, d_optimizer=trainer.d_optimizer,
                          pool_a=trainer.pool_a, pool_b=trainer.pool_b, epoch=epoch),
                     config.checkpoint_dir, config.max_to_keep, IteratorInput(dataset))
    state.restore(_resume_failed, print_fn, note=lambda: f" (epoch {int(epoch.numpy()) + 1})")
    options = dataclasses.asdict(config)
    options.update(steps_per_epoch=steps_per_epoch, schedule_steps=schedule_steps,
                   young_images=len(domains.young), old_images=len(domains.old),
                   skipped_images=len(domains.skipped))
    atomic_write_json(os.path.join(config.checkpoint_dir, "training_options.json"), options)
    summary_writer = tf.summary.create_file_writer(config.tensorboard_dir)
    strips = SampleStrips(trainer.g_a, trainer.g_b,
                          sample_batches(domains, config.crop_size, config.num_samples),
                          config.sample_dir, summary_writer)
    start_step = state.step_value
    if start_step >= max_steps:
        print_fn(f"already at step {start_step} >= {max_steps}: nothing to do")
        return {"step": start_step}
    plan = CycleGANPlan(config, state, trainer, epoch, steps_per_epoch, max_steps, summary_writer)
    return loop.run(plan, [plan.learning_rate, SamplesHook(strips.write, config.sample_interval)],
                    print_fn)


def _make_trainer(config: CycleGANConfig) -> CycleGANTrainer:
    """The four networks and the trainer, after the output folders were found writable with
    room for a checkpoint."""
    g_a, g_b, d_a, d_b = make_networks(config.n_blocks, config.ngf, config.ndf,
                                       config.crop_size, config.init_gain,
                                       config.mixed_precision)
    # The networks' weights with two Adam moments each, and the two image pools.
    pools = 2 * config.pool_size * config.crop_size ** 2 * 3 * 4
    weights = count_values(v for m in (g_a, g_b, d_a, d_b) for v in m.variables)
    probe_writable([config.checkpoint_dir, config.sample_dir, config.tensorboard_dir],
                   checkpoint_bytes(3 * weights, pools))
    return CycleGANTrainer(g_a, g_b, d_a, d_b, (config.crop_size, config.crop_size, 3),
                           config.lambda_a, config.lambda_b, config.lambda_identity,
                           config.gan_mode, config.pool_size, config.lr, config.beta1,
                           config.beta2, config.seed, mixed_precision=config.mixed_precision)
