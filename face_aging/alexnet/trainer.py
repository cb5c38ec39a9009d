"""Training the frozen AlexNet here: the trunk and age head on age labels, the identity head on
identity labels where the dataset has them. The loop of ``python -m face_aging.pretrain``
(the command: ``face_aging.apps.pretrain``).

Takes a :class:`PretrainConfig`; never reads flags.

Data (``face_aging.alexnet.data``): the prepared folders' ``train.txt`` / ``test.txt`` and
``train_identity.txt``, a seeded validation split of ``train.txt``, the training images decoded
once into memory and augmented on the fly.

Long runs. Every random draw of training is a pure function of the seed and a counter:
the n-th training sample (order: a stateless permutation per epoch, ``index_shuffle``) and
its augmentation are keyed on ``(seed, n)``, dropout on ``(seed, step)``. The checkpoint
(``OUTPUT/train/ckpt-N``) holds the weights, the optimizer (slots, iteration count, learning
rate), the step, the number of samples drawn (the input position), the early-stopping state
(best validation accuracy, its step, validations without improvement) and the training time
used; so a restart continues exactly where the checkpoint was written, and with
``deterministic`` (and no time budget: the schedule then depends on wall time) a killed and
restarted run ends with the same weights, bit for bit, as an uninterrupted one.

The network is this project's :class:`face_aging.backbones.alexnet.AlexNet` (release layout,
LRN, no batch norm); pretraining adds dropout after age_fc6/age_fc7 (and fc6/fc7/new_1) which
the GAN does not use (``face_aging.alexnet.networks``).

The steps run on the engine's one training loop (``face_aging.engine.loop``):
:class:`PretrainPlan` (learning rate, low-resolution phase, step, progress lines, final
report), :class:`Validation` (validation, best weights, early stop) and the engine's
``TimeBudgetHook`` (training time, budget).
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from face_aging import checkpoints, precision
from face_aging.alexnet.config import PretrainConfig, PretrainError, problems
from face_aging.alexnet.data import (SIZE, PretrainData, check_images_exist, class_weights,
                                     group_names_of, load_images, make_eval_dataset,
                                     make_train_dataset, read_datasets, to_input)
from face_aging.alexnet.networks import (forward, initialise_alexnet, make_optimizer,
                                         trained_layers)
from face_aging.alexnet.report import classification_report, write_report
from face_aging.alexnet.validation import (feature_function, predict, validation_auc,
                                           validation_pairs, verification_reports)
from face_aging.backbones import ALEXNET_LAYERS
from face_aging.backbones.alexnet import AlexNet, build_alexnet, load_alexnet_layers
from face_aging.engine import loop
from face_aging.engine.hooks import Hook, LearningRateHook, TimeBudgetHook
from face_aging.engine.loop import Outcome, TrainPlan, write_scalars
from face_aging.engine.nonfinite import guarded_step
from face_aging.engine.setup import (checkpoint_bytes, configure_determinism, count_values,
                                     probe_writable)
from face_aging.engine.state import CounterInput, RunState, first_line
from face_aging.files import atomic_write_json

#: Entries hold their folder's root: paths are joined to nothing.
ROOT = ""


def lr_at(step: int, progress: float, config: PretrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``final_lr_fraction``."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    floor = peak * config.final_lr_fraction
    progress = min(max(progress, 0.0), 1.0)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _validate(config: PretrainConfig):
    """Raises PretrainError (one line) for the rules of ``face_aging.alexnet.config`` that
    ``config`` breaks (the table the flags are validated with)."""
    broken = problems(config)
    if broken:
        raise PretrainError("; ".join(broken))


def _without_xla_where_it_fails(config: PretrainConfig, print_fn) -> PretrainConfig:
    if config.deterministic and config.jit_compile:
        # Measured: under op determinism XLA refuses the max-pool gradient ("do not yet have
        # a deterministic XLA implementation"), on CPU too.
        print_fn("deterministic: the training step runs without XLA (TF has no deterministic "
                 "XLA max-pool gradient)")
        config = dataclasses.replace(config, jit_compile=False)
    if (config.jit_compile and precision.parse_mode(config.mixed_precision) == "bfloat16"
            and not tf.config.list_physical_devices("GPU")):
        # Measured on this project's CPU (AVX-512 BF16), AlexNet at batch 32: bf16 without XLA
        # about 2.5x faster than float32; with XLA no faster than float32 (XLA's CPU
        # convolutions do not use oneDNN's bf16 kernels).
        print_fn("bfloat16 on a CPU: the training step runs without XLA (XLA's CPU "
                 "convolutions gain nothing from bfloat16)")
        config = dataclasses.replace(config, jit_compile=False)
    return config


@dataclasses.dataclass
class PretrainSetup:
    """What a run found in its data: the lists, the layers it trains, the heads it uses, the
    age groups' names, counts and loss weights."""
    data: PretrainData
    layers: Tuple[str, ...]
    use_identity: bool
    use_age: bool
    names: List[str]
    counts: np.ndarray
    weights: np.ndarray


def _read_data(config: PretrainConfig) -> PretrainSetup:
    data = read_datasets(config)
    layers = trained_layers(data.has_identity, data.has_age, config.train_layers)
    use_age = data.has_age and "age_fc8" in layers
    check_images_exist(data.train + data.val, ROOT, "training")
    check_images_exist(data.test, ROOT, "test")
    counts = np.bincount([g for _, g, _ in data.train if g >= 0], minlength=config.age_groups)
    weights = class_weights(counts, config.class_balance_power) if use_age else np.zeros(
        config.age_groups, np.float32)
    return PretrainSetup(data, layers, data.has_identity and "new_2" in layers, use_age,
                         group_names_of(data.list_dirs[0], config.age_groups), counts, weights)


def _print_data(config: PretrainConfig, setup: PretrainSetup, print_fn) -> None:
    data = setup.data
    print_fn(f"data: {len(data.train)} train, {len(data.val)} validation, {len(data.test)} test "
             f"images from {', '.join(data.list_dirs)}; train per age group "
             f"{setup.counts.tolist()}"
             + (f"; {data.identities} identities" if setup.use_identity
                else "; identity head not trained")
             + f"; training {', '.join(setup.layers)}")
    if config.class_balance == "weights" and setup.use_age:
        print_fn("class loss weights: " + ", ".join(f"{n} {w:.2f}"
                                                    for n, w in zip(setup.names, setup.weights)))


def _build(config: PretrainConfig, layers):
    """The AlexNet (built), the variables a run trains and their optimizer."""
    with precision.keras_policy(config.mixed_precision):
        alexnet = AlexNet(age_groups=config.age_groups, identities=config.identities)
        build_alexnet(alexnet)
    variables = [v for name in layers
                 for v in (getattr(alexnet, name).kernel, getattr(alexnet, name).bias)]
    return alexnet, variables, make_optimizer(config, variables)


def _prepare_output(config: PretrainConfig, alexnet, variables) -> str:
    """Checks the output folders (writable, room for a save), removes what a kill during a
    best-weights write left, writes the options; returns the best weights' folder."""
    out = config.output_dir
    pretrained_dir = os.path.join(out, "pretrained")
    # At worst a new training checkpoint (all weights + optimizer slots) is written before the
    # old one is deleted, plus a new pretrained/alexnet-* (all weights).
    slots = 2 if config.optimizer == "adamw" else 1
    probe_writable([out, os.path.join(out, "train"), pretrained_dir,
                    os.path.join(out, "tensorboard")],
                   checkpoint_bytes(2 * count_values(alexnet.variables)
                                    + slots * count_values(variables), slack=1.1))
    for name in os.listdir(pretrained_dir):  # left by a kill during a best-weights write
        if name.startswith(".tmp_alexnet_"):
            shutil.rmtree(os.path.join(pretrained_dir, name), ignore_errors=True)
    atomic_write_json(os.path.join(out, "pretrain_options.json"), dataclasses.asdict(config))
    return pretrained_dir


@dataclasses.dataclass
class EarlyStopping:
    """The early-stopping state a checkpoint holds: the best validation score, its step, and
    the validations since without improvement."""
    best_acc: tf.Variable
    best_step: tf.Variable
    bad_evals: tf.Variable

    @classmethod
    def make(cls) -> "EarlyStopping":
        return cls(tf.Variable(-1.0, dtype=tf.float64, trainable=False),
                   tf.Variable(0, dtype=tf.int64, trainable=False),
                   tf.Variable(0, dtype=tf.int64, trainable=False))

    def note(self) -> str:
        return (f" (best validation accuracy {float(self.best_acc):.4f} at step "
                f"{int(self.best_step)})")


def has_best(pretrained_dir: str) -> bool:
    """True if the best weights' folder holds a checkpoint."""
    return os.path.isdir(pretrained_dir) and any(
        f.startswith("alexnet-") and f.endswith(".index") for f in os.listdir(pretrained_dir))


def keep_weights(alexnet, pretrained_dir: str, step: int, keep: EarlyStopping) -> None:
    """Writes the current weights as the best ones (``pretrained/alexnet-STEP``)."""
    from face_aging.alexnet.formats import write_alexnet_checkpoint

    write_alexnet_checkpoint(alexnet, pretrained_dir, step)
    keep.best_step.assign(step)


def _resume_failed(latest: str, error: BaseException) -> str:
    return (f"{latest}: cannot resume this run from it (other layers, optimizer or options?): "
            f"{first_line(error)}")


def _restore_or_initialise(config: PretrainConfig, state: RunState, alexnet, images,
                           keep: EarlyStopping, print_fn) -> None:
    if state.restore(_resume_failed, print_fn, note=keep.note) is None:
        sample = None
        if not config.init_from:
            sample = to_input(tf.cast(images[:64], tf.float32))
        print_fn("init: " + initialise_alexnet(alexnet, config, sample, print_fn))


@dataclasses.dataclass
class ValidationSets:
    """The validation data: age-labelled faces (``ages``), verification pairs among the
    validation people (``pairs``, their faces ``faces``, a traced ``features`` function)."""
    ages: Optional[tf.data.Dataset]
    pairs: Optional[tuple]
    faces: Optional[tf.data.Dataset]
    features: Optional[Callable]

    @classmethod
    def make(cls, config: PretrainConfig, setup: PretrainSetup, alexnet) -> "ValidationSets":
        val_age = [e for e in setup.data.val if e[1] >= 0]
        ages = make_eval_dataset(val_age, ROOT, config.eval_batch_size) \
            if val_age and setup.use_age else None
        pairs = validation_pairs(setup.data.val, config.split_seed) if setup.use_identity else None
        if pairs is not None and not pairs[2].any():
            pairs = None  # no validation person has two images
        faces = make_eval_dataset(pairs[3], ROOT, config.eval_batch_size) \
            if pairs is not None else None
        features = feature_function(alexnet, config.verification_layer) \
            if faces is not None else None
        return cls(ages, pairs, faces, features)

    def score_name(self) -> str:
        if self.ages is not None and self.faces is not None:
            return "mean of age accuracy and verification AUC"
        return "verification AUC" if self.faces is not None else "age accuracy"


def make_train_step(config: PretrainConfig, alexnet, variables, optimizer, use_identity: bool):
    """The traced, guarded training step ``(x, age, identity, weight, seed, poison) ->
    {loss, identity_loss, gradients, accuracy, finite}``: dropout keyed on ``seed``, ``poison``
    added to the loss (tests: NaN). A step with a non-finite loss, gradient or updated weight is
    undone (weights and every optimizer variable) by ``face_aging.engine.nonfinite``."""
    smoothing = config.label_smoothing

    def ce(logits, labels, depth):
        target = tf.one_hot(labels, depth)
        target = target * (1 - smoothing) + smoothing / depth
        return tf.nn.softmax_cross_entropy_with_logits(target, logits)

    def step_fn(inputs):
        x, age, identity, w, seed, poison = inputs
        with tf.GradientTape() as tape:
            out = forward(alexnet, x, training=True, dropout=config.dropout,
                          identity=use_identity, seed=seed)
            age_ce = ce(out["age_logits"], age, config.age_groups)
            loss = tf.reduce_sum(w * age_ce) / tf.maximum(tf.reduce_sum(w), 1e-12) + poison
            id_loss = tf.constant(0.0)
            if use_identity:
                mask = tf.cast(identity >= 0, tf.float32)
                id_ce = ce(out["identity_logits"], tf.maximum(identity, 0), config.identities)
                id_loss = tf.reduce_sum(mask * id_ce) / tf.maximum(tf.reduce_sum(mask), 1.0)
                loss = loss + config.identity_weight * id_loss
            loss_opt = loss
            if config.optimizer == "sgd" and config.weight_decay > 0:
                loss_opt = loss + 0.5 * config.weight_decay * tf.add_n(
                    [tf.reduce_sum(tf.square(v)) for v in variables if len(v.shape) > 1])
            if precision.uses_loss_scaling(config.mixed_precision):
                loss_opt = optimizer.scale_loss(loss_opt)
        grads = tape.gradient(loss_opt, variables)
        optimizer.apply_gradients(zip(grads, variables))
        labelled = tf.cast(age >= 0, tf.float32)
        correct = tf.reduce_sum(labelled * tf.cast(tf.equal(
            tf.argmax(out["age_logits"], -1, output_type=tf.int32), age), tf.float32)) / (
            tf.maximum(tf.reduce_sum(labelled), 1.0))
        gradients = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in grads]))
        return {"loss": loss, "identity_loss": id_loss, "gradients": gradients,
                "accuracy": correct}

    state = variables + list(optimizer.variables)  # everything a step changes

    def guarded(*inputs):
        return guarded_step(step_fn, inputs, state, variables, checked=PretrainPlan.checked)

    return tf.function(guarded, jit_compile=config.jit_compile)


class PretrainPlan(TrainPlan):
    """Pretraining's part of the engine's loop: the learning rate (warm-up, then cosine on
    the larger of the step's and the time budget's share), the low-resolution phase, the
    step (dropout keyed on ``(seed, step)``), progress lines with the means since the last one,
    and the end: the best weights and the test report.

    ``train_step``: :func:`make_train_step`'s; ``keep``: the early-stopping state;
    ``validation``: the validation sets; ``clock``: the run's training time and budget.
    """
    checked = ("loss", "identity_loss", "gradients")

    def __init__(self, config: PretrainConfig, setup: PretrainSetup, state: RunState, alexnet,
                 optimizer, train_step, summary_writer, print_fn, keep: EarlyStopping,
                 validation: ValidationSets, clock: TimeBudgetHook):
        self.config, self.setup, self.state, self.alexnet = config, setup, state, alexnet
        self.optimizer, self.train_step, self.clock = optimizer, train_step, clock
        self.summary_writer, self.print_fn = summary_writer, print_fn
        self.keep, self.validation = keep, validation
        self.max_steps, self.log_interval = config.max_steps, config.log_every
        self.save_interval, self.nan_policy = config.save_every, config.nan_policy
        self.pretrained_dir = os.path.join(config.output_dir, "pretrained")
        self.learning_rate = LearningRateHook(
            lambda index: lr_at(index, self.progress(index), config), self._set_learning_rate)
        self.shrink = tf.function(lambda x, size: tf.image.resize(x, (size, size), antialias=True))
        self.size: Optional[int] = None
        self.losses: List[float] = []
        self.accs: List[float] = []

    def progress(self, step: int) -> float:
        """The share of the run done: of the steps, or of the time budget if that is larger."""
        p = step / self.config.max_steps
        if self.clock.budget > 0:
            p = max(p, self.clock.seconds() / self.clock.budget)
        return p

    def low_res(self, step: int) -> bool:
        c = self.config
        return c.low_res_size > 0 and self.progress(step) < c.low_res_fraction

    def _set_learning_rate(self, lr: float) -> float:
        self.optimizer.learning_rate.assign(lr)
        return float(self.optimizer.learning_rate.numpy())  # as applied (float32)

    def before_step(self, loop, index: int) -> None:
        self.learning_rate.before_step(loop, index)
        size = self.config.low_res_size if self.low_res(index) else SIZE
        if size != self.size:
            loop.print(f"step {index}: training at {size}x{size}")
            loop.expect_compile()  # a new input side traces the step again
            self.size = size

    def step(self, batch, index: int) -> Dict[str, tf.Tensor]:
        """Step number ``index + 1``; its dropout is keyed on ``(seed, index)``."""
        x, age, identity, w = batch
        if self.size != SIZE:
            x = self.shrink(x, self.size)
        poison = float("nan") if index + 1 in self.config.nan_at_steps else 0.0
        return self.train_step(x, age, identity, w, tf.constant([self.config.seed, index],
                                                                tf.int64),
                               tf.constant(poison, tf.float32))

    def after_update(self, loop, current: int, out, finite: bool) -> None:
        if finite:  # skipped steps are left out of the means
            self.losses.append(float(out["loss"]))
            self.accs.append(float(out["accuracy"]))

    def stop_reason(self, loop, step: int, starting: bool) -> Optional[str]:
        c = self.config
        if step >= c.max_steps:
            return f"reached max_steps={c.max_steps}"
        if (starting and c.patience and self.setup.data.val
                and int(self.keep.bad_evals) >= c.patience):
            return "already stopped early (resumed a finished run)"
        return None

    def log(self, loop, current: int, out) -> Dict[str, float]:
        c, progress = self.config, loop.progress
        left = progress.eta_seconds()
        if self.clock.budget > 0 and left is not None:
            left = min(left, self.clock.budget - self.clock.seconds())
        mean_loss = float(np.mean(self.losses)) if self.losses else float("nan")
        mean_acc = float(np.mean(self.accs)) if self.accs else float("nan")
        shown = (f"loss {mean_loss:.4f} train acc {mean_acc:.3f}" if self.losses
                 else "loss - train acc - (skipped)")
        lr = self.learning_rate.shown
        loop.print(f"step {current}/{c.max_steps} {shown} lr {lr:.2e} | "
                   + progress.status(c.batch_size, left))
        write_scalars(self.summary_writer, {
            "train/loss": mean_loss if self.losses else None,
            "train/accuracy": mean_acc if self.losses else None,
            "train/learning_rate": lr,
            "train/images_per_second": (progress.rate * c.batch_size
                                        if progress.rate is not None else None),
            "train/identity_loss": float(out["identity_loss"]) if self.setup.use_identity
            else None}, current)
        self.losses, self.accs = [], []
        return {"loss": mean_loss, "accuracy": mean_acc}

    def finish(self, outcome: Outcome) -> Dict:
        self.summary_writer.flush()
        if outcome.stopped_by is not None:
            return {"stopped_by": outcome.stopped_by, "step": outcome.step}
        if not has_best(self.pretrained_dir):  # e.g. resumed a run that ended before this
            keep_weights(self.alexnet, self.pretrained_dir, outcome.step, self.keep)  # kept one
        self.print_fn(f"stopped: {outcome.stop_reason}")
        return final_report(self, outcome)


class Validation(Hook):
    """Every ``eval_every`` steps and at the end: validation (age accuracy and/or verification
    AUC); the best weights kept (``pretrained/alexnet-STEP``); early stop after ``patience``
    validations without improvement. In the low-resolution phase it only shows accuracy.
    When the run ends without best weights yet, the last ones are kept."""

    def __init__(self, plan: PretrainPlan, names: List[str]):
        self.plan, self.names = plan, names

    def after_step(self, loop, current: int, reason: Optional[str]) -> Optional[str]:
        plan = self.plan
        if current % plan.config.eval_every == 0 or reason is not None:
            reason = self.evaluate(loop, current) or reason  # an early stop
        if reason is not None and not has_best(plan.pretrained_dir):
            keep_weights(plan.alexnet, plan.pretrained_dir, current, plan.keep)
        return reason

    def evaluate(self, loop, step: int) -> Optional[str]:
        """Validates at ``step``; returns the early-stop reason when patience ran out."""
        plan, c, keep, sets = self.plan, self.plan.config, self.plan.keep, self.plan.validation
        if plan.low_res(step):  # the low-resolution phase: show progress, keep nothing
            if sets.ages is not None:
                labels, preds = predict(plan.alexnet, sets.ages, c.low_res_size)
                rep = classification_report(labels, preds, c.age_groups, self.names)
                loop.print(f"validation at step {step} ({c.low_res_size} px phase): accuracy "
                           f"{rep['accuracy']:.4f}, within one {rep['within_one_accuracy']:.4f}")
            return None
        if sets.ages is None and sets.faces is None:
            keep_weights(plan.alexnet, plan.pretrained_dir, step, keep)
            return None
        score, shown = self._score(step)
        improved = score > float(keep.best_acc) + c.min_delta
        if improved:
            keep.best_acc.assign(score)
            keep.bad_evals.assign(0)
            keep_weights(plan.alexnet, plan.pretrained_dir, step, keep)
        else:
            keep.bad_evals.assign_add(1)
        loop.print(f"validation at step {step}: " + "; ".join(shown)
                   + (" (best, saved)" if improved else
                      f" (best {float(keep.best_acc):.4f} at step {int(keep.best_step)}; "
                      f"{int(keep.bad_evals)}/{c.patience} without improvement)"))
        if c.patience and int(keep.bad_evals) >= c.patience:
            return f"early stop: no validation improvement in {c.patience} evaluations"
        return None

    def _score(self, step: int) -> Tuple[float, List[str]]:
        """The selection score (the mean of what was measured) and what to show of it."""
        plan, c, sets = self.plan, self.plan.config, self.plan.validation
        parts, shown = [], []
        if sets.ages is not None:
            labels, preds = predict(plan.alexnet, sets.ages)
            rep = classification_report(labels, preds, c.age_groups, self.names)
            parts.append(rep["accuracy"])
            shown.append(f"accuracy {rep['accuracy']:.4f}, within one "
                         f"{rep['within_one_accuracy']:.4f}, balanced "
                         f"{rep['balanced_accuracy']:.4f}")
            write_scalars(plan.summary_writer, {
                "val/accuracy": rep["accuracy"],
                "val/within_one_accuracy": rep["within_one_accuracy"]}, step)
        if sets.faces is not None:
            auc = validation_auc(plan.alexnet, sets.faces, sets.pairs, c.verification_layer,
                                 sets.features)
            parts.append(auc)
            shown.append(f"{c.verification_layer} verification AUC {auc:.4f} "
                         f"({int(sets.pairs[2].sum())} same / {int((~sets.pairs[2]).sum())} "
                         "different pairs)")
            write_scalars(plan.summary_writer, {"val/verification_auc": auc}, step)
        score = float(np.mean(parts))
        if len(parts) > 1:
            shown.append(f"score {score:.4f}")
        return score, shown


def final_report(plan: PretrainPlan, outcome: Outcome) -> Dict:
    """The best weights reloaded, the test report (``report.json``, ``report.png``) and the
    verification reports; returns the report."""
    c, setup, keep, alexnet = plan.config, plan.setup, plan.keep, plan.alexnet
    best = os.path.join(plan.pretrained_dir, f"alexnet-{int(keep.best_step)}")
    if not os.path.exists(best + ".index"):
        best = checkpoints.resolve_checkpoint(plan.pretrained_dir)
    load_alexnet_layers(best, alexnet, ALEXNET_LAYERS)
    test = setup.data.test
    report: Dict = {}
    if test:
        labels, preds = predict(alexnet, make_eval_dataset(test, ROOT, c.eval_batch_size,
                                                           cache=False))
        report = classification_report(labels, preds, c.age_groups, setup.names)
    report["verification"] = verification_reports(alexnet, setup.data.verification_pairs,
                                                  c.verification_layer, plan.print_fn)
    report.update(_report_fields(plan, outcome, best))
    out = c.output_dir
    if test:
        write_report(report, os.path.join(out, "report.json"), os.path.join(out, "report.png"),
                     title=f"AlexNet age classifier, test split ({len(test)} images), "
                           f"step {int(keep.best_step)}")
        plan.print_fn(f"test: accuracy {report['accuracy']:.4f}, within one "
                      f"{report['within_one_accuracy']:.4f}, per-group recall "
                      + ", ".join(f"{g['name']} {g['recall']:.3f}" if g["recall"] is not None
                                  else f"{g['name']} -" for g in report["per_group"]))
    else:
        atomic_write_json(os.path.join(out, "report.json"), report)
    plan.print_fn(f"wrote {best} (use --alexnet_pretrained_model={best} "
                  f"--age_pretrained_model={best}) and {os.path.join(out, 'report.json')}")
    return report


def _report_fields(plan: PretrainPlan, outcome: Outcome, best: str) -> Dict:
    c, setup, data = plan.config, plan.setup, plan.setup.data
    train_seconds = float(plan.clock.elapsed)
    steps = outcome.step
    return {
        "split": "test",
        "checkpoint": best,
        "best_step": int(plan.keep.best_step),
        "best_validation_accuracy": float(plan.keep.best_acc) if data.val else None,
        "validation_score": plan.validation.score_name(),
        "steps": steps,
        "batch_size": c.batch_size,
        "training_seconds": train_seconds,
        "images_per_second": steps * c.batch_size / train_seconds if train_seconds else None,
        "stop_reason": outcome.stop_reason,
        "train_images": len(data.train), "validation_images": len(data.val),
        "identity_trained": setup.use_identity,
        "identities": data.identities if setup.use_identity else 0,
        "trained_layers": list(setup.layers), "list_dirs": data.list_dirs,
        "init": c.init_from or "scratch",
    }


def pretrain(config: PretrainConfig, print_fn: Callable[[str], None] = print) -> Dict:
    """Trains (or resumes) on the engine's loop, early-stops on validation accuracy, writes the
    best weights as a TF2 AlexNet checkpoint and the test report. Returns the report dict, or,
    when SIGTERM / SIGINT ended the run (after writing a checkpoint),
    ``{"stopped_by": NAME, "step": N}``.

    Output folder:
      ``pretrained/alexnet-STEP``: the best weights (``save_alexnet``): what
      ``train_ipcgan.py --alexnet_pretrained_model / --age_pretrained_model`` take;
      ``train/ckpt-N``: training state for resume (see the module docstring);
      ``tensorboard/``; ``report.json``, ``report.png``; ``pretrain_options.json``.

    Raises:
      PretrainError, TrainingSetupError: before any step, one line saying what is wrong.
      NonFiniteLossError: a step was not finite under ``nan_policy="stop"`` (it was undone,
        nothing written after it; the message names the step, the loss and the last good
        checkpoint).
    """
    _validate(config)
    configure_determinism(config.seed, config.deterministic)
    config = _without_xla_where_it_fails(config, print_fn)
    setup = _read_data(config)
    alexnet, variables, optimizer = _build(config, setup.layers)
    _prepare_output(config, alexnet, variables)
    keep, elapsed = EarlyStopping.make(), tf.Variable(0.0, dtype=tf.float64, trainable=False)
    state = RunState(dict(alexnet=alexnet, optimizer=optimizer, best_acc=keep.best_acc,
                          best_step=keep.best_step, bad_evals=keep.bad_evals, elapsed=elapsed),
                     os.path.join(config.output_dir, "train"), 1,
                     CounterInput(config.batch_size), announce_saves=False)
    _print_data(config, setup, print_fn)
    images = load_images(setup.data.train, ROOT, print_fn)
    _restore_or_initialise(config, state, alexnet, images, keep, print_fn)
    images = tf.Variable(images, trainable=False, name="train_images")  # the pipeline's copy
    validation = ValidationSets.make(config, setup, alexnet)
    train_step = make_train_step(config, alexnet, variables, optimizer, setup.use_identity)
    writer = tf.summary.create_file_writer(os.path.join(config.output_dir, "tensorboard"))
    clock = TimeBudgetHook(elapsed, config.time_budget_minutes)  # counts on from the restored
    plan = PretrainPlan(config, setup, state, alexnet, optimizer, train_step, writer, print_fn,
                        keep, validation, clock)
    state.input.start(lambda start: make_train_dataset(setup.data.train, images, config,
                                                       setup.weights, start))
    return loop.run(plan, [Validation(plan, setup.names), clock], print_fn)
