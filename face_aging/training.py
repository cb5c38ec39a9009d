"""The IPCGAN training step (spec §2) and the training loop around it.

``IPCGANTrainer.train_step`` reads top to bottom: the frozen AlexNet's source features,
the generator's forward pass, one discriminator update (Adam on D), then one generator
update (Adam on G) against the discriminator *just updated*.
"""
from __future__ import annotations

from typing import Dict, Optional

import keras
import tensorflow as tf

from face_aging import losses, pixels, precision
from face_aging.models import FEATURE_LAYERS, build_models, one_hot_age

#: ``step_structure`` values: "reuse" computes the fake faces and the source features once a
#: step; "release" recomputes them for the G update as the release's two ``sess.run`` calls did.
from face_aging.config import STEP_STRUCTURES  # TF-free home; still importable from here


def make_adam(learning_rate: float, beta_1=0.5, beta_2=0.999, epsilon=1e-8,
              loss_scale: bool = False) -> keras.optimizers.Optimizer:
    """The release's Adam (TF1 ``AdamOptimizer`` update; epsilon 1e-8, not Keras' 1e-7)."""
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scale else optimizer


def guarded_step(step_fn, batch, state, checked_variables) -> Dict[str, tf.Tensor]:
    """Runs ``step_fn(batch)`` (a dict of scalar losses); if a loss or a variable of
    ``checked_variables`` is then not finite, assigns every variable of ``state`` its value
    from before the step. Adds ``finite`` (bool tensor) to the returned dict. Inside a
    ``tf.function``: the snapshot and checks are ordered by control dependencies."""
    saved = [tf.identity(v) for v in state]
    with tf.control_dependencies(saved):
        logged = step_fn(batch)
    checks = [tf.reduce_all(tf.math.is_finite(v)) for v in logged.values()]
    with tf.control_dependencies(list(logged.values())):
        checks += [tf.reduce_all(tf.math.is_finite(v)) for v in checked_variables]
    finite = tf.reduce_all(tf.stack(checks))

    def undo():
        for variable, value in zip(state, saved):
            variable.assign(value)
        return tf.constant(False)

    logged["finite"] = tf.cond(finite, lambda: tf.constant(True), undo)
    return logged


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

    def _state(self):
        """Everything a step changes: G and D variables and both optimizers' variables."""
        return (list(self.generator.variables) + list(self.discriminator.variables)
                + list(self.g_optimizer.variables) + list(self.d_optimizer.variables))

    def _guarded_step(self, batch) -> Dict[str, tf.Tensor]:
        if not self.nan_guard:
            return self._step_fn(batch)
        return guarded_step(self._step_fn, batch, self._state(),
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
