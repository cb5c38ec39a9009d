"""IPCGAN training: one step (spec §2) and the loop of ``train_ipcgan.py`` around it.

``IPCGANTrainer.train_step`` reads top to bottom: the frozen AlexNet's source features,
the generator's forward pass, one discriminator update (Adam on D), then one generator
update (Adam on G) against the discriminator *just updated*.

:func:`train` sets a run up (data, models, AlexNet, checkpoint, samples) and runs it on the
engine's one training loop (``face_aging.engine.loop``) with :class:`IPCGANPlan`: the
reconstruction start, then GAN steps. It takes a :class:`face_aging.ipcgan.config.TrainConfig`;
it never reads flags.

What a checkpoint holds (``tf.train.Checkpoint``, written by a ``CheckpointManager``):
generator, discriminator, both optimizers, the step, and the input iterator's position
(tf.data iterators are checkpointable: shuffle order, label-pair cursor, buffered
batches; left out with ``cache``, whose shuffle buffer would hold the decoded dataset).
Restarting the same command after a kill continues exactly where the last checkpoint left
off; with ``deterministic`` the weights then equal an uninterrupted run's. With a strategy
(``face_aging.engine.distribute``) the chief writes the checkpoint and other workers only
their input position.
A checkpoint is complete before the manager points to it, so a kill during a save leaves
the previous one as the latest.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from face_aging import pixels, precision
from face_aging.backbones import ALEXNET_AGE, ALEXNET_IDENTITY, ALEXNET_TRUNK, FEATURE_LAYERS
from face_aging.backbones.alexnet import AlexNet, load_alexnet_layers
from face_aging.engine import distribute, loop, samples
from face_aging.engine.hooks import SamplesHook
from face_aging.engine.loop import TrainPlan
from face_aging.engine.nonfinite import guarded_step
from face_aging.engine.optim import make_adam
from face_aging.engine.setup import (TrainingSetupError, checkpoint_bytes, configure_determinism,
                                     count_values, probe_writable)
from face_aging.engine.state import IteratorInput, RunState, own_checkpoint_dir
from face_aging.files import atomic_write_json
from face_aging.inference import recorded_options_file
from face_aging.ipcgan import losses
from face_aging.ipcgan.checkpoints import restore_models
from face_aging.ipcgan.config import STEP_STRUCTURES, TrainConfig, problems
from face_aging.ipcgan.data import make_train_dataset
from face_aging.ipcgan.networks import Discriminator, Generator, build_models, one_hot_age

log = logging.getLogger("face_aging")


class IPCGANTrainer:
    """Holds G, D, the frozen AlexNet and both optimizers; ``train_step(batch)`` is one step.

    Args:
      generator, discriminator, alexnet: the models (AlexNet is never updated).
      gan_loss_weight, fea_loss_weight, age_loss_weight: the release's loss weights
        (paper: 75, 0.5e-4, 30).
      fea_layer_name: AlexNet layer for the identity feature loss (paper: ``conv5``).
      learning_rate: Adam learning rate of both networks (release: 1e-3).
      step_structure: ``"reuse"`` (default: fake faces and source features computed once;
        same losses and updates as the release) or ``"release"`` (recomputed for the G
        update, as the release's graph ran; slower, kept for benchmarks).
      jit_compile: compile the step with XLA.
      mixed_precision: ``"none"``, ``"float16"`` or ``"bfloat16"`` (``face_aging.precision``;
        a bool is read as the old flag: True = float16). The models must have been built under
        the matching Keras policy; float16 wraps both optimizers in dynamic loss scaling,
        bfloat16 needs none.
      strategy: a ``tf.distribute`` strategy whose scope the models and this trainer were
        created in (None: one device). ``train_step`` then takes a distributed batch
        (``strategy.experimental_distribute_dataset``) of the *global* batch; gradients are
        all-reduced (mean over replicas = the gradient of the global-batch loss), applied
        once in cross-replica context (Keras 3 cannot apply inside ``strategy.run``), and the
        G update runs after the D update as on one device (the generator forward is
        recomputed for it, as the release's graph did).
      nan_guard: if any loss, gradient or updated weight is not finite, undo the whole step
        (G, D, both optimizers, batch-norm statistics) and report ``finite=False``. The release
        had no guard; with finite numbers the step is the same.
      l1_loss_weight: not the release (0: its loss). Adds ``l1_w * mean|G(x) - x|`` to G's loss,
        the generated face against its input, both in [-1, 1]: it holds colours, layout and so
        identity while the age loss changes the face. Logged as ``l1_loss`` (unweighted) when > 0.
    """

    def __init__(self, generator, discriminator, alexnet, gan_loss_weight=75.0,
                 fea_loss_weight=0.5e-4, age_loss_weight=30.0, fea_layer_name="conv5",
                 learning_rate=1e-3, step_structure="reuse", jit_compile=False,
                 mixed_precision="none", nan_guard=True, strategy=None, l1_loss_weight=0.0):
        if fea_layer_name not in FEATURE_LAYERS:
            raise ValueError(f"fea_layer_name {fea_layer_name!r}: choose from {FEATURE_LAYERS}")
        if step_structure not in STEP_STRUCTURES:
            raise ValueError(f"step_structure {step_structure!r}: choose from {STEP_STRUCTURES}")
        for name, w in (("gan", gan_loss_weight), ("fea", fea_loss_weight), ("age", age_loss_weight),
                        ("l1", l1_loss_weight)):
            if w < 0:
                raise ValueError(f"{name}_loss_weight must be >= 0, got {w}")
        self.generator, self.discriminator, self.alexnet = generator, discriminator, alexnet
        self.gan_w = float(gan_loss_weight)
        self.fea_w = float(fea_loss_weight)
        self.age_w = float(age_loss_weight)
        self.l1_w = float(l1_loss_weight)
        self.fea_layer_name = fea_layer_name
        self.mixed_precision = precision.parse_mode(mixed_precision)
        self.loss_scaling = precision.uses_loss_scaling(self.mixed_precision)
        self.g_optimizer = make_adam(learning_rate, loss_scale=self.loss_scaling)
        self.d_optimizer = make_adam(learning_rate, loss_scale=self.loss_scaling)
        self.step_structure = step_structure
        self.nan_guard = nan_guard
        if generator.built and discriminator.built:
            self._build_optimizers()
        self.strategy = strategy
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            self._step_fn = self._train_step_distributed
        else:
            self._step_fn = (self._train_step_reuse if step_structure == "reuse"
                             else self._train_step_release)
        self._compiled_step = tf.function(self._guarded_step, jit_compile=jit_compile)

    def _build_optimizers(self):
        # Create the Adam slots before any step, so that a checkpoint restores them at once
        # (a deferred restore would be lost) and the guarded step can snapshot them.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def train_step(self, batch) -> Dict[str, tf.Tensor]:
        """One D update then one G update (see the class docstring); returns the logged losses
        (``d_loss``, ``g_loss``, ``fea_loss``, ``age_loss``: each divided by its weight, as
        the release logs them) and ``finite``."""
        if not self.g_optimizer.built:
            if not (self.generator.built and self.discriminator.built):
                build_models(self.generator, self.discriminator, self.alexnet,
                             int(batch["source_128"].shape[1]))
            self._build_optimizers()
        return self._compiled_step(batch)

    def state_variables(self):
        """Everything a step changes: G and D variables and both optimizers' variables."""
        return (list(self.generator.variables) + list(self.discriminator.variables)
                + list(self.g_optimizer.variables) + list(self.d_optimizer.variables))

    def _guarded_step(self, batch) -> Dict[str, tf.Tensor]:
        if not self.nan_guard:
            return self._step_fn(batch)
        return guarded_step(self._step_fn, batch, self.state_variables(),
                            self.generator.trainable_variables
                            + self.discriminator.trainable_variables)

    # -- the reconstruction start (not the release) ----------------------------------------
    def enable_reconstruction(self, learning_rate: float = 2e-4, beta_1: float = 0.5,
                              l1_weight: float = 1.0, fea_weight: Optional[float] = None):
        """Makes :meth:`reconstruction_step` available: G alone learns to give back its input.

        Not in the release: a better start for G than random weights (``train_ipcgan.py
        --reconstruction_steps``). Its own Adam (``r_optimizer``: ``learning_rate``, ``beta_1``,
        epsilon 1e-8), so the GAN phase after it starts with fresh moments, as the release's
        transfer from another run did. ``fea_weight`` defaults to the GAN's ``fea_loss_weight``.
        """
        self.r_l1_w = float(l1_weight)
        self.r_fea_w = self.fea_w if fea_weight is None else float(fea_weight)
        self.r_optimizer = make_adam(learning_rate, beta_1=beta_1, loss_scale=self.loss_scaling)
        if self.generator.built:
            self.r_optimizer.build(self.generator.trainable_variables)
        self._compiled_reconstruction = tf.function(self._guarded_reconstruction)

    def reconstruction_step(self, batch, seed) -> Dict[str, tf.Tensor]:
        """One generator update towards reproducing its input, the discriminator untouched.

        Each face gets its own random target age (``seed``: int64 ``[2]``, a stateless seed,
        e.g. ``(run seed, step)``, so a resumed run draws the same ages), so that G learns to
        keep the face whatever the condition. With ``target = source`` scaled to [-1, 1]::

            rec_loss = l1_w * mean|G(source, age) - target| + fea_w * msum(feat(G), feat(source))

        ``feat`` is the frozen AlexNet's ``fea_layer_name`` (the GAN's identity loss), batch
        norm uses batch statistics and updates the moving ones, as in the GAN step.
        Returns ``rec_l1`` and ``fea_loss`` (unweighted) and ``finite``.
        """
        if not self.r_optimizer.built:
            self.r_optimizer.build(self.generator.trainable_variables)
        return self._compiled_reconstruction(batch, tf.convert_to_tensor(seed, tf.int64))

    def _guarded_reconstruction(self, batch, seed):
        step = lambda b: self._reconstruction(b, seed)
        if not self.nan_guard:
            return step(batch)
        state = list(self.generator.variables) + list(self.r_optimizer.variables)
        return guarded_step(step, batch, state, self.generator.trainable_variables)

    def _reconstruction(self, batch, seed) -> Dict[str, tf.Tensor]:
        source = batch["source_128"]
        count = tf.shape(source)[0]
        groups = tf.random.stateless_uniform([count], seed, 0, self.generator.age_groups,
                                             dtype=tf.int32)
        target = pixels.to_unit_range(pixels.generator_input_to_0_255(source))
        source_features = self._alexnet_features(batch["source_227"])[self.fea_layer_name]
        g = self.generator
        with tf.GradientTape() as tape:
            fake = g((source, one_hot_age(groups, g.age_groups)), training=True)
            l1 = losses.l1_to_source(fake, target)
            fake_features = self._alexnet_features(pixels.generated_to_alexnet(fake))
            fea = losses.msum(fake_features[self.fea_layer_name], source_features)
            total = self.r_l1_w * l1 + self.r_fea_w * fea
            if self.loss_scaling:
                total = self.r_optimizer.scale_loss(total)
        grads = tape.gradient(total, g.trainable_variables)
        self.r_optimizer.apply_gradients(zip(grads, g.trainable_variables))
        return {"rec_l1": l1, "fea_loss": fea}

    # -- pieces shared by both structures ------------------------------------------------
    def _alexnet_features(self, images_227, with_age=False):
        names = (self.fea_layer_name, "age_logits") if with_age else (self.fea_layer_name,)
        return self.alexnet(images_227, training=False, outputs=names)

    def _discriminator_update(self, batch, fake, age_t, age_f):
        d = self.discriminator
        with tf.GradientTape() as d_tape:
            d_real_true = d((batch["real"], age_t), training=True)
            d_real_false = d((batch["real"], age_f), training=True)
            d_fake_true = d((tf.stop_gradient(fake), age_t), training=True)
            d_loss = losses.lsgan_discriminator_loss(d_real_true, d_real_false, d_fake_true)
            d_total = self.gan_w * d_loss
            if self.loss_scaling:
                d_total = self.d_optimizer.scale_loss(d_total)
        d_grads = d_tape.gradient(d_total, d.trainable_variables)
        self.d_optimizer.apply_gradients(zip(d_grads, d.trainable_variables))
        return d_loss

    def _generator_losses(self, batch, fake, source_features, age_t):
        d_fake_true = self.discriminator((fake, age_t), training=True)
        g_adv = losses.lsgan_generator_loss(d_fake_true)
        fake_out = self._alexnet_features(pixels.generated_to_alexnet(fake), with_age=True)
        fea = losses.msum(fake_out[self.fea_layer_name], source_features)
        age = losses.age_classification_loss(fake_out["age_logits"], batch["target_group"])
        total = self.gan_w * g_adv + self.fea_w * fea + self.age_w * age
        terms = {"g_loss": g_adv, "fea_loss": fea, "age_loss": age}
        if self.l1_w:
            source = pixels.to_unit_range(pixels.generator_input_to_0_255(batch["source_128"]))
            terms["l1_loss"] = losses.l1_to_source(fake, source)
            total += self.l1_w * terms["l1_loss"]
        return total, terms

    def _apply_generator(self, g_tape, g_total):
        g = self.generator
        g_grads = g_tape.gradient(g_total, g.trainable_variables)
        self.g_optimizer.apply_gradients(zip(g_grads, g.trainable_variables))

    # -- the two step structures ---------------------------------------------------------
    def _train_step_reuse(self, batch) -> Dict[str, tf.Tensor]:
        age_groups = self.generator.age_groups
        age_t = one_hot_age(batch["target_group"], age_groups)
        age_f = one_hot_age(batch["false_group"], age_groups)
        source_features = self._alexnet_features(batch["source_227"])[self.fea_layer_name]
        with tf.GradientTape() as g_tape:
            fake = self.generator((batch["source_128"], age_t), training=True)
            with g_tape.stop_recording():
                d_loss = self._discriminator_update(batch, fake, age_t, age_f)
            g_total, terms = self._generator_losses(batch, fake, source_features, age_t)
            if self.loss_scaling:
                g_total = self.g_optimizer.scale_loss(g_total)
        self._apply_generator(g_tape, g_total)
        return {"d_loss": d_loss, **terms}

    def _train_step_release(self, batch) -> Dict[str, tf.Tensor]:
        age_groups = self.generator.age_groups
        age_t = one_hot_age(batch["target_group"], age_groups)
        age_f = one_hot_age(batch["false_group"], age_groups)
        fake_for_d = self.generator((batch["source_128"], age_t), training=True)
        d_loss = self._discriminator_update(batch, fake_for_d, age_t, age_f)
        source_features = self._alexnet_features(batch["source_227"])[self.fea_layer_name]
        with tf.GradientTape() as g_tape:
            fake = self.generator((batch["source_128"], age_t), training=True)
            g_total, terms = self._generator_losses(batch, fake, source_features, age_t)
            if self.loss_scaling:
                g_total = self.g_optimizer.scale_loss(g_total)
        self._apply_generator(g_tape, g_total)
        return {"d_loss": d_loss, **terms}

    def _train_step_distributed(self, dist_batch) -> Dict[str, tf.Tensor]:
        strategy, age_groups = self.strategy, self.generator.age_groups
        mean = tf.distribute.ReduceOp.MEAN

        def discriminator_grads(batch):
            age_t = one_hot_age(batch["target_group"], age_groups)
            age_f = one_hot_age(batch["false_group"], age_groups)
            fake = self.generator((batch["source_128"], age_t), training=True)
            d = self.discriminator
            with tf.GradientTape() as tape:
                d_loss = losses.lsgan_discriminator_loss(
                    d((batch["real"], age_t), training=True),
                    d((batch["real"], age_f), training=True),
                    d((tf.stop_gradient(fake), age_t), training=True))
                d_total = self.gan_w * d_loss
                if self.loss_scaling:
                    d_total = self.d_optimizer.scale_loss(d_total)
            grads = tape.gradient(d_total, d.trainable_variables)
            return d_loss, tf.distribute.get_replica_context().all_reduce(mean, grads)

        def generator_grads(batch):
            age_t = one_hot_age(batch["target_group"], age_groups)
            source_features = self._alexnet_features(batch["source_227"])[self.fea_layer_name]
            with tf.GradientTape() as tape:
                fake = self.generator((batch["source_128"], age_t), training=True)
                g_total, terms = self._generator_losses(batch, fake, source_features, age_t)
                if self.loss_scaling:
                    g_total = self.g_optimizer.scale_loss(g_total)
            grads = tape.gradient(g_total, self.generator.trainable_variables)
            return terms, tf.distribute.get_replica_context().all_reduce(mean, grads)

        def first_replica(values):
            return [strategy.experimental_local_results(v)[0] for v in values]

        d_loss, d_grads = strategy.run(discriminator_grads, args=(dist_batch,))
        self.d_optimizer.apply_gradients(zip(first_replica(d_grads),
                                             self.discriminator.trainable_variables))
        terms, g_grads = strategy.run(generator_grads, args=(dist_batch,))
        self.g_optimizer.apply_gradients(zip(first_replica(g_grads),
                                             self.generator.trainable_variables))
        reduce = lambda v: strategy.reduce(mean, v, axis=None)
        # The release logs each loss divided by its weight, i.e. the unweighted loss.
        return {"d_loss": reduce(d_loss), **{k: reduce(v) for k, v in terms.items()}}


# --------------------------------------------------------------------------- the run

def load_pretrained_alexnet(config: TrainConfig, alexnet: AlexNet, warn: Callable = log.warning):
    """Fills the frozen AlexNet: trunk + identity head from ``alexnet_pretrained_model``,
    the age head from ``age_pretrained_model`` (release TF1 files or TF2 checkpoints)."""
    if config.alexnet_pretrained_model is None and config.age_pretrained_model is None:
        if not config.allow_random_alexnet:
            raise TrainingSetupError("no pretrained AlexNet given (--alexnet_pretrained_model, "
                                     "--age_pretrained_model); pass --allow_random_alexnet to "
                                     "train against a random one")
        warn("!" * 72 + "\nTRAINING AGAINST A RANDOMLY INITIALISED ALEXNET: the age and identity "
             "losses are meaningless; use this only for tests and smoke runs.\n" + "!" * 72)
        return
    if config.alexnet_pretrained_model is not None:
        load_alexnet_layers(config.alexnet_pretrained_model, alexnet,
                            ALEXNET_TRUNK + ALEXNET_IDENTITY)
    if config.age_pretrained_model is not None:
        if config.alexnet_pretrained_model is None:
            load_alexnet_layers(config.age_pretrained_model, alexnet, ALEXNET_TRUNK)
        load_alexnet_layers(config.age_pretrained_model, alexnet, ALEXNET_AGE)


class SampleWriter:
    """Writes the release's sample grids for a fixed source batch: the sources and one grid per group.

    ``batch_stats``: True as the release's sampler (G in training mode: batch statistics, so
    each grid's batch-shared age map is mostly normalised away again); False renders with the
    moving statistics, as ``test.py`` does -- the honest view of a ``per_sample_targets`` run.
    """

    def __init__(self, generator: Generator, source_128: tf.Tensor, sample_dir: str,
                 summary_writer=None, batch_stats: bool = True):
        self.generator, self.source_128 = generator, source_128
        self.sample_dir, self.summary_writer = sample_dir, summary_writer
        self.batch_stats = batch_stats

    def write(self, step: int):
        n = int(self.source_128.shape[0])
        sources = np.clip(pixels.generator_input_to_0_255(self.source_128).numpy(), 0, 255)
        grids = {"source": samples.image_grid(sources.astype(np.uint8))}
        for group in range(self.generator.age_groups):
            age = one_hot_age(tf.fill([n], group), self.generator.age_groups)
            fake = self.generator((self.source_128, age), training=False,
                                  batch_stats=self.batch_stats)
            grids[f"group{group}"] = samples.image_grid(pixels.to_uint8(fake.numpy()))
        samples.write_step_images(self.sample_dir, step, grids, self.summary_writer)
        return grids


def _build(config: TrainConfig, synchronized_bn: bool = False):
    with precision.keras_policy(config.mixed_precision):
        generator = Generator(config.age_groups, config.bn_epsilon, synchronized_bn,
                              upsample=config.upsample)
        discriminator = Discriminator(config.age_groups, config.bn_epsilon,
                                      config.d_output_channels, synchronized_bn)
        alexnet = AlexNet(config.age_groups)
        build_models(generator, discriminator, alexnet, config.image_size)
    return generator, discriminator, alexnet


def _strategy(config: TrainConfig, print_fn: Callable[[str], None]):
    """The ``tf.distribute`` strategy (None: one device) and this process's place in it."""
    try:  # before any other TF work: a strategy configures the runtime
        strategy = distribute.make_strategy(config.distribution, config.logical_cpu_devices)
    except distribute.DistributionError as e:
        raise TrainingSetupError(str(e)) from None
    if strategy is not None and strategy.num_replicas_in_sync == 1 and (
            distribute.worker_info(strategy)["num_workers"] == 1):
        print_fn(f"--distribution={config.distribution}: one device found; training on it "
                 "without a strategy")
        strategy = None
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if config.reconstruction_steps and strategy is not None:
        raise TrainingSetupError("--reconstruction_steps runs on one device; start the "
                                 "distributed run from its checkpoint with "
                                 "--source_checkpoint_dir")
    if config.batch_size % replicas:
        raise TrainingSetupError(f"batch_size {config.batch_size} (the global batch) does not "
                                 f"divide over {replicas} replicas")
    return strategy, distribute.worker_info(strategy)


def _make_trainer(config: TrainConfig, strategy, info, print_fn) -> IPCGANTrainer:
    """G, D and the frozen AlexNet (in the strategy's scope), after the output folders were
    found writable with room for a checkpoint."""
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        generator, discriminator, alexnet = _build(
            config, synchronized_bn=strategy is not None and config.synchronized_bn)
        # The chief writes checkpoints, samples and logs; another worker only its scratch copy.
        # Weights + two Adam slots per trainable weight, some slack for the iterator state.
        probe_writable([config.checkpoint_dir, config.sample_dir, config.tensorboard_dir]
                       if info["is_chief"] else [own_checkpoint_dir(config.checkpoint_dir, info)],
                       checkpoint_bytes(3 * count_values(generator.variables
                                                         + discriminator.variables)))
        load_pretrained_alexnet(config, alexnet, warn=print_fn)
        trainer = IPCGANTrainer(generator, discriminator, alexnet, config.gan_loss_weight,
                                config.fea_loss_weight, config.age_loss_weight,
                                config.fea_layer_name, config.learning_rate,
                                config.step_structure, config.jit_compile,
                                config.mixed_precision, strategy=strategy,
                                l1_loss_weight=config.l1_loss_weight)
        if config.reconstruction_steps:
            trainer.enable_reconstruction(config.reconstruction_learning_rate,
                                          l1_weight=config.reconstruction_l1_weight)
    return trainer


def _run_state(config: TrainConfig, trainer: IPCGANTrainer, dataset, info) -> RunState:
    models = dict(generator=trainer.generator, discriminator=trainer.discriminator,
                  g_optimizer=trainer.g_optimizer, d_optimizer=trainer.d_optimizer)
    if config.reconstruction_steps:
        models["r_optimizer"] = trainer.r_optimizer
    # With --cache the iterator's state would hold the whole decoded dataset (its shuffle
    # buffer: 3.9 GB at 64 px on UTKFace), so it stays out of the checkpoint; a resumed run
    # then reshuffles from seed + step (reproducible, not the uninterrupted run's order).
    return RunState(models, config.checkpoint_dir, config.max_to_keep,
                    IteratorInput(dataset, checkpointed=not config.cache), worker=info)


def _resume_failed(latest: str, error: BaseException) -> str:
    return (f"{latest} does not hold what this run needs (written with other options, e.g. "
            f"--cache?): {str(error).splitlines()[0][:200]}")


def _check_recorded_upsample(config: TrainConfig) -> None:
    """A run resumed with another ``--upsample`` would load its weights into layers that compute
    something else (the variables have the same shapes): refused with one line."""
    if not tf.train.latest_checkpoint(config.checkpoint_dir):
        return
    try:
        path, options = recorded_options_file(config.checkpoint_dir)
    except ValueError as e:  # one line naming the file
        raise TrainingSetupError(str(e)) from None
    recorded = options.get("upsample", "deconv") if path else config.upsample  # older: deconv
    if recorded != config.upsample:
        raise TrainingSetupError(
            f"{config.checkpoint_dir} was trained with --upsample={recorded}; resume it with "
            f"that, or train --upsample={config.upsample} in a new --checkpoint_dir "
            "(--source_checkpoint_dir starts it from this run's weights)")


def _resume(config: TrainConfig, state: RunState, trainer: IPCGANTrainer, make_dataset,
            print_fn) -> None:
    """Resume from the latest checkpoint; else start from another run's G and D if given."""
    _check_recorded_upsample(config)
    if state.restore(_resume_failed, print_fn) is None and config.source_checkpoint_dir:
        prefix = restore_models(config.source_checkpoint_dir, trainer.generator,
                                trainer.discriminator, config.model_index)
        print_fn(f"initialised generator and discriminator from {prefix}")
    step = state.step_value
    if config.cache and step > 0:
        state.input.iterator = iter(make_dataset(config.seed + step))
        print_fn(f"--cache: data order reshuffled from seed {config.seed} + step {step} "
                 "(the input position is not checkpointed with --cache)")


class IPCGANPlan(TrainPlan):
    """IPCGAN's part of the engine's loop: the reconstruction start (``reconstruction_steps``,
    each with a stateless seed ``(seed, step)``), then GAN steps; a worker's batch split over
    its local replicas under a strategy."""

    def __init__(self, config: TrainConfig, state: RunState, trainer: IPCGANTrainer, strategy,
                 summary_writer, print_fn):
        self.config, self.state, self.trainer = config, state, trainer
        self.strategy, self.summary_writer, self.print_fn = strategy, summary_writer, print_fn
        self.max_steps, self.log_interval = config.max_steps, config.log_interval
        self.save_interval, self.nan_policy = config.save_interval, config.nan_policy

    def next_batch(self):
        batch = self.state.input.next()
        if self.strategy is not None:
            batch = distribute.split_batch(self.strategy, batch,
                                           self.state.worker["local_replicas"])
        return batch

    def step(self, batch, index: int) -> Dict[str, tf.Tensor]:
        reconstruction = self.config.reconstruction_steps
        if index < reconstruction:
            return self.trainer.reconstruction_step(batch, [self.config.seed, index])
        if index == reconstruction > 0:
            self.print_fn(f"step {index}: reconstruction start done; GAN training from here")
        return self.trainer.train_step(batch)


def train(config: TrainConfig, print_fn: Callable[[str], None] = print) -> Dict[str, float]:
    """Runs (or resumes) training to ``config.max_steps`` (the loop: ``face_aging.engine``).

    Returns:
      the last logged losses, ``step``, and ``stopped_by`` (a signal name) if a signal ended it.
    Raises:
      TrainingSetupError: before any step, with one line saying what is wrong.
      NonFiniteLossError: a step was not finite under ``nan_policy="stop"``.
    """
    broken = problems(config)  # the rules of face_aging.ipcgan.config (the flags' table too)
    if broken:
        raise TrainingSetupError("; ".join(broken))
    config = config.resolved()
    configure_determinism(config.seed, config.deterministic)
    strategy, info = _strategy(config, print_fn)

    def make_dataset(seed, cache=config.cache):
        return make_train_dataset(config.list_dir, config.root_folder,
                                  config.batch_size // info["num_workers"], config.age_groups,
                                  config.image_size, seed, config.source_file, cache,
                                  info["num_workers"], info["worker_index"],
                                  config.per_sample_targets)

    dataset = make_dataset(config.seed)
    trainer = _make_trainer(config, strategy, info, print_fn)
    state = _run_state(config, trainer, dataset, info)
    _resume(config, state, trainer, make_dataset, print_fn)
    if info["is_chief"]:
        atomic_write_json(os.path.join(config.checkpoint_dir, "training_options.json"),
                          dataclasses.asdict(config))
    summary_writer = (tf.summary.create_file_writer(config.tensorboard_dir) if info["is_chief"]
                      else tf.summary.create_noop_writer())
    # A fixed source batch for the sample grids, from a separate, uncached pipeline: the
    # training iterator's position is part of the checkpoint and must not move for it, and
    # with --cache a second iterator would decode the whole dataset again into its own
    # shuffle buffer just for one batch.
    sample_batch = next(iter(make_dataset(config.seed, cache=False)))["source_128"]
    sample_writer = SampleWriter(trainer.generator, sample_batch, config.sample_dir,
                                 summary_writer, batch_stats=not config.per_sample_targets)
    start_step = state.step_value
    if start_step >= config.max_steps:
        print_fn(f"already at step {start_step} >= max_steps {config.max_steps}: nothing to do")
        return {"step": start_step}
    plan = IPCGANPlan(config, state, trainer, strategy, summary_writer, print_fn)
    samples_hook = SamplesHook(sample_writer.write, config.sample_interval, info["is_chief"])
    return loop.run(plan, [samples_hook], print_fn)
