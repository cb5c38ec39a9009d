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
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from face_aging import checkpoints, precision
from face_aging.alexnet.config import (CLASS_BALANCE, IDENTITY_MODES, OPTIMIZERS, TRAIN_LAYERS,
                                       PretrainConfig, PretrainError)
from face_aging.alexnet.data import (SIZE, check_images_exist, class_weights, group_names_of,
                                     load_images, make_eval_dataset, make_train_dataset,
                                     read_datasets, to_input)
from face_aging.alexnet.networks import (forward, initialise_alexnet, make_optimizer,
                                         trained_layers)
from face_aging.alexnet.report import classification_report, write_report
from face_aging.alexnet.validation import (feature_function, predict, validation_auc,
                                           validation_pairs, verification_reports)
from face_aging.backbones import ALEXNET_LAYERS, FEATURE_LAYERS
from face_aging.backbones.alexnet import AlexNet, build_alexnet, load_alexnet_layers
from face_aging.engine.nonfinite import NonFiniteLossError
from face_aging.engine.options import NAN_POLICIES
from face_aging.engine.setup import configure_determinism, probe_writable, write_json_atomic
from face_aging.engine.signals import StopSignal
from face_aging.progress import TrainingProgress


def lr_at(step: int, progress: float, config: PretrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``final_lr_fraction``."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    floor = peak * config.final_lr_fraction
    progress = min(max(progress, 0.0), 1.0)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _validate(config: PretrainConfig):
    problems = []
    if config.batch_size < 2:
        problems.append("batch_size must be >= 2")
    if config.age_groups < 2:
        problems.append("age_groups must be >= 2")
    if config.max_steps < 1:
        problems.append("max_steps must be >= 1")
    if not 0 <= config.val_fraction < 1:
        problems.append("val_fraction must be in [0, 1)")
    if not 0 <= config.dropout < 1:
        problems.append("dropout must be in [0, 1)")
    if not 0 < config.crop_scale_min <= 1:
        problems.append("crop_scale_min must be in (0, 1]")
    if config.learning_rate <= 0:
        problems.append("learning_rate must be > 0")
    if config.class_balance not in CLASS_BALANCE:
        problems.append(f"class_balance must be one of {CLASS_BALANCE}")
    if config.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {OPTIMIZERS}")
    if config.identity not in IDENTITY_MODES:
        problems.append(f"identity must be one of {IDENTITY_MODES}")
    if config.train_layers not in TRAIN_LAYERS:
        problems.append(f"train_layers must be one of {TRAIN_LAYERS}")
    if config.train_layers == "age_head" and not config.init_from:
        problems.append("train_layers=age_head trains the age head on a frozen trunk: give the "
                        "trunk with init_from")
    if config.verification_layer not in FEATURE_LAYERS:
        problems.append(f"verification_layer must be one of {FEATURE_LAYERS}")
    if config.nan_policy not in NAN_POLICIES:
        problems.append(f"nan_policy must be one of {NAN_POLICIES}")
    if config.init_from and not (os.path.exists(config.init_from)
                                 or os.path.exists(config.init_from + ".index")):
        problems.append(f"init_from {config.init_from}: no such file or checkpoint")
    if problems:
        raise PretrainError("; ".join(problems))


def _checkpoint_bytes(alexnet, variables, optimizer: str) -> int:
    """Disk a save needs at worst: a new training checkpoint (all weights + optimizer slots)
    written before the old one is deleted, plus a new ``pretrained/alexnet-*`` (all weights)."""
    every = sum(int(np.prod(v.shape)) for v in alexnet.variables)
    trained = sum(int(np.prod(v.shape)) for v in variables)
    slots = (2 if optimizer == "adamw" else 1) * trained
    return int((2 * every + slots) * 4 * 1.1)


def _non_finite_line(step: int, flags, latest: Optional[str]) -> str:
    names = ("loss", "identity_loss", "gradients", "weights")
    bad = [n for n, ok in zip(names, flags) if not ok]
    # a non-finite loss makes its gradients non-finite too: name the first cause
    bad = [n for n in bad if n.endswith("loss")] or bad[:1] or ["weights"]
    return (f"step {step}: non-finite {', '.join(bad)}; the step was not applied "
            f"(last good checkpoint: {latest or 'none'})")


def pretrain(config: PretrainConfig, print_fn: Callable[[str], None] = print) -> Dict:
    """Trains (or resumes), early-stops on validation accuracy, writes the best weights as a
    TF2 AlexNet checkpoint and the test report. Returns the report dict, or, when SIGTERM /
    SIGINT ended the run (after writing a checkpoint), ``{"stopped_by": NAME, "step": N}``.

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
    from face_aging.alexnet.formats import write_alexnet_checkpoint

    _validate(config)
    configure_determinism(config.seed, config.deterministic)
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
    root = ""  # entries hold their folder's root
    data = read_datasets(config)
    train_e, val_e, test_e, num_ids = data.train, data.val, data.test, data.identities
    layers = trained_layers(data.has_identity, data.has_age, config.train_layers)
    use_identity = data.has_identity and "new_2" in layers
    use_age = data.has_age and "age_fc8" in layers
    check_images_exist(train_e + val_e, root, "training")
    check_images_exist(test_e, root, "test")
    names = group_names_of(data.list_dirs[0], config.age_groups)
    counts = np.bincount([g for _, g, _ in train_e if g >= 0], minlength=config.age_groups)
    weights = class_weights(counts, config.class_balance_power) if use_age else np.zeros(
        config.age_groups, np.float32)

    out = config.output_dir
    train_dir = os.path.join(out, "train")
    pretrained_dir = os.path.join(out, "pretrained")
    with precision.keras_policy(config.mixed_precision):
        alexnet = AlexNet(age_groups=config.age_groups, identities=config.identities)
        build_alexnet(alexnet)
    variables = [v for name in layers
                 for v in (getattr(alexnet, name).kernel, getattr(alexnet, name).bias)]
    optimizer = make_optimizer(config, variables)
    probe_writable([out, train_dir, pretrained_dir, os.path.join(out, "tensorboard")],
                   _checkpoint_bytes(alexnet, variables, config.optimizer))
    for name in os.listdir(pretrained_dir):  # left by a kill during a best-weights write
        if name.startswith(".tmp_alexnet_"):
            shutil.rmtree(os.path.join(pretrained_dir, name), ignore_errors=True)
    write_json_atomic(os.path.join(out, "pretrain_options.json"), dataclasses.asdict(config))

    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    samples_seen = tf.Variable(0, dtype=tf.int64, trainable=False)
    best_acc = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
    best_step = tf.Variable(0, dtype=tf.int64, trainable=False)
    bad_evals = tf.Variable(0, dtype=tf.int64, trainable=False)
    elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    state = tf.train.Checkpoint(alexnet=alexnet, optimizer=optimizer, step=step_var,
                                samples_seen=samples_seen, best_acc=best_acc,
                                best_step=best_step, bad_evals=bad_evals, elapsed=elapsed)
    manager = tf.train.CheckpointManager(state, train_dir, max_to_keep=1)

    print_fn(f"data: {len(train_e)} train, {len(val_e)} validation, {len(test_e)} test images "
             f"from {', '.join(data.list_dirs)}; train per age group {counts.tolist()}"
             + (f"; {num_ids} identities" if use_identity else "; identity head not trained")
             + f"; training {', '.join(layers)}")
    if config.class_balance == "weights" and use_age:
        print_fn("class loss weights: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights)))

    images = load_images(train_e, root, print_fn)
    if manager.latest_checkpoint:
        state.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        if int(samples_seen) == 0 and int(step_var) > 0:  # a checkpoint from before the counter
            samples_seen.assign(int(step_var) * config.batch_size)
        print_fn(f"resumed from {manager.latest_checkpoint} at step {int(step_var)} "
                 f"(best validation accuracy {float(best_acc):.4f} at step {int(best_step)})")
    else:
        sample = None
        if not config.init_from:
            sample = to_input(tf.cast(images[:64], tf.float32))
        print_fn("init: " + initialise_alexnet(alexnet, config, sample, print_fn))
    images = tf.Variable(images, trainable=False, name="train_images")  # the pipeline's copy
    val_age = [e for e in val_e if e[1] >= 0]
    val_ds = make_eval_dataset(val_age, root, config.eval_batch_size) if val_age and use_age \
        else None
    val_pairs = validation_pairs(val_e, config.split_seed) if use_identity else None
    if val_pairs is not None and not val_pairs[2].any():
        val_pairs = None  # no validation person has two images
    val_id_ds = make_eval_dataset(val_pairs[3], root, config.eval_batch_size) \
        if val_pairs is not None else None
    val_features = feature_function(alexnet, config.verification_layer) \
        if val_id_ds is not None else None

    smoothing = config.label_smoothing

    def ce(logits, labels, depth):
        target = tf.one_hot(labels, depth)
        target = target * (1 - smoothing) + smoothing / depth
        return tf.nn.softmax_cross_entropy_with_logits(target, logits)

    state_vars = variables + list(optimizer.variables)

    def train_step_fn(x, age, identity, w, seed, poison):
        # Everything a step changes, to undo it if any number comes out non-finite.
        saved = [tf.identity(v) for v in state_vars]
        with tf.control_dependencies(saved):
            with tf.GradientTape() as tape:
                out_ = forward(alexnet, x, training=True, dropout=config.dropout,
                               identity=use_identity, seed=seed)
                age_ce = ce(out_["age_logits"], age, config.age_groups)
                loss = tf.reduce_sum(w * age_ce) / tf.maximum(tf.reduce_sum(w), 1e-12) + poison
                id_loss = tf.constant(0.0)
                if use_identity:
                    mask = tf.cast(identity >= 0, tf.float32)
                    id_ce = ce(out_["identity_logits"], tf.maximum(identity, 0),
                               config.identities)
                    id_loss = tf.reduce_sum(mask * id_ce) / tf.maximum(tf.reduce_sum(mask), 1.0)
                    loss = loss + config.identity_weight * id_loss
                if config.optimizer == "sgd" and config.weight_decay > 0:
                    loss_opt = loss + 0.5 * config.weight_decay * tf.add_n(
                        [tf.reduce_sum(tf.square(v)) for v in variables if len(v.shape) > 1])
                else:
                    loss_opt = loss
                if precision.uses_loss_scaling(config.mixed_precision):
                    loss_opt = optimizer.scale_loss(loss_opt)
            grads = tape.gradient(loss_opt, variables)
            optimizer.apply_gradients(zip(grads, variables))
        flags = [tf.reduce_all(tf.math.is_finite(loss)), tf.reduce_all(tf.math.is_finite(id_loss)),
                 tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in grads]))]
        with tf.control_dependencies(flags):
            flags.append(tf.reduce_all(tf.stack(
                [tf.reduce_all(tf.math.is_finite(v)) for v in variables])))
        flags = tf.stack(flags)

        def undo():
            for variable, value in zip(state_vars, saved):
                variable.assign(value)
            return tf.constant(False)

        finite = tf.cond(tf.reduce_all(flags), lambda: tf.constant(True), undo)
        labelled = tf.cast(age >= 0, tf.float32)
        correct = tf.reduce_sum(labelled * tf.cast(tf.equal(
            tf.argmax(out_["age_logits"], -1, output_type=tf.int32), age), tf.float32)) / (
            tf.maximum(tf.reduce_sum(labelled), 1.0))
        return loss, id_loss, correct, finite, flags

    compiled_step = tf.function(train_step_fn, jit_compile=config.jit_compile)
    shrink = tf.function(lambda x, size: tf.image.resize(x, (size, size), antialias=True))

    def train_step(x, age, identity, w, size, done):
        """Step number ``done + 1``; its dropout is keyed on ``(seed, done)``."""
        if size != SIZE:
            x = shrink(x, size)
        poison = float("nan") if done + 1 in config.nan_at_steps else 0.0
        return compiled_step(x, age, identity, w, tf.constant([config.seed, done], tf.int64),
                             tf.constant(poison, tf.float32))

    writer = tf.summary.create_file_writer(os.path.join(out, "tensorboard"))
    budget = config.time_budget_minutes * 60.0
    start_step = int(step_var)
    t_start, elapsed_start = time.time(), float(elapsed)
    step_progress = TrainingProgress(config.max_steps, start_step, config.log_every)
    losses, accs = [], []
    stop_reason = None

    def run_elapsed():
        return elapsed_start + (time.time() - t_start)

    def progress():
        p = int(step_var) / config.max_steps
        if budget > 0:
            p = max(p, run_elapsed() / budget)
        return p

    def low_res_now():
        return config.low_res_size > 0 and progress() < config.low_res_fraction

    def evaluate_and_keep_best():
        nonlocal stop_reason
        if low_res_now():  # the low-resolution phase: show progress, keep nothing
            if val_ds is not None:
                labels, preds = predict(alexnet, val_ds, config.low_res_size)
                rep = classification_report(labels, preds, config.age_groups, names)
                print_fn(f"validation at step {int(step_var)} ({config.low_res_size} px phase): "
                         f"accuracy {rep['accuracy']:.4f}, within one "
                         f"{rep['within_one_accuracy']:.4f}")
            return
        if val_ds is None and val_id_ds is None:
            write_alexnet_checkpoint(alexnet, pretrained_dir, int(step_var))
            best_step.assign(int(step_var))
            return
        parts, shown = [], []
        if val_ds is not None:
            labels, preds = predict(alexnet, val_ds)
            rep = classification_report(labels, preds, config.age_groups, names)
            parts.append(rep["accuracy"])
            shown.append(f"accuracy {rep['accuracy']:.4f}, within one "
                         f"{rep['within_one_accuracy']:.4f}, balanced "
                         f"{rep['balanced_accuracy']:.4f}")
            with writer.as_default():
                tf.summary.scalar("val/accuracy", rep["accuracy"], step=int(step_var))
                tf.summary.scalar("val/within_one_accuracy", rep["within_one_accuracy"],
                                  step=int(step_var))
        if val_id_ds is not None:
            auc = validation_auc(alexnet, val_id_ds, val_pairs, config.verification_layer,
                                 val_features)
            parts.append(auc)
            shown.append(f"{config.verification_layer} verification AUC {auc:.4f} "
                         f"({int(val_pairs[2].sum())} same / {int((~val_pairs[2]).sum())} "
                         "different pairs)")
            with writer.as_default():
                tf.summary.scalar("val/verification_auc", auc, step=int(step_var))
        acc = float(np.mean(parts))  # the selection score: mean of what was measured
        improved = acc > float(best_acc) + config.min_delta
        if improved:
            best_acc.assign(acc)
            best_step.assign(int(step_var))
            bad_evals.assign(0)
            write_alexnet_checkpoint(alexnet, pretrained_dir, int(step_var))
        else:
            bad_evals.assign_add(1)
        if len(parts) > 1:
            shown.append(f"score {acc:.4f}")
        print_fn(f"validation at step {int(step_var)}: " + "; ".join(shown)
                 + (" (best, saved)" if improved else
                    f" (best {float(best_acc):.4f} at step {int(best_step)}; "
                    f"{int(bad_evals)}/{config.patience} without improvement)"))
        if config.patience and int(bad_evals) >= config.patience:
            stop_reason = (f"early stop: no validation improvement in {config.patience} "
                           "evaluations")

    def has_best():
        return os.path.isdir(pretrained_dir) and any(
            f.startswith("alexnet-") and f.endswith(".index") for f in os.listdir(pretrained_dir))

    # A finished run (its last checkpoint was written after its final evaluation) goes
    # straight to the report.
    if start_step >= config.max_steps:
        stop_reason = f"reached max_steps={config.max_steps}"
    elif config.patience and val_e and int(bad_evals) >= config.patience:
        stop_reason = "already stopped early (resumed a finished run)"
    elif budget > 0 and run_elapsed() >= budget:
        stop_reason = f"time budget of {config.time_budget_minutes:g} minutes used"
    iterator = iter(make_train_dataset(train_e, images, config, weights, int(samples_seen)))
    current_size = None
    with StopSignal() as stop:
        while stop_reason is None:
            step = int(step_var)
            optimizer.learning_rate.assign(lr_at(step, progress(), config))
            lr = float(optimizer.learning_rate.numpy())  # as applied (float32)
            size = config.low_res_size if low_res_now() else SIZE
            if size != current_size:
                print_fn(f"step {step}: training at {size}x{size}")
                step_progress.expect_compile()  # a new input side traces the step again
                print_fn(step_progress.compiling_line())
                current_size = size
            x, age, identity, w = next(iterator)
            loss, id_loss, acc, finite, flags = train_step(x, age, identity, w, size, step)
            if not bool(finite):
                line = _non_finite_line(step + 1, flags.numpy(), manager.latest_checkpoint)
                if config.nan_policy == "stop":
                    raise NonFiniteLossError(line)
                print_fn(line + "; skipping it (--nan_policy=skip)")
            else:
                losses.append(float(loss))
                accs.append(float(acc))
            step_var.assign_add(1)
            samples_seen.assign_add(config.batch_size)
            step = int(step_var)
            if step >= config.max_steps:
                stop_reason = f"reached max_steps={config.max_steps}"
            elif budget > 0 and run_elapsed() >= budget:
                stop_reason = f"time budget of {config.time_budget_minutes:g} minutes used"
            final = stop_reason is not None
            if step_progress.step_done(step) or final:  # every log_every steps and every few seconds
                left = step_progress.eta_seconds()
                if budget > 0 and left is not None:
                    left = min(left, budget - run_elapsed())
                mean_loss = float(np.mean(losses)) if losses else float("nan")
                mean_acc = float(np.mean(accs)) if accs else float("nan")
                shown = (f"loss {mean_loss:.4f} train acc {mean_acc:.3f}" if losses
                         else "loss - train acc - (skipped)")
                print_fn(f"step {step}/{config.max_steps} {shown} lr {lr:.2e} | "
                         + step_progress.status(config.batch_size, left))
                with writer.as_default():
                    if losses:
                        tf.summary.scalar("train/loss", mean_loss, step=step)
                        tf.summary.scalar("train/accuracy", mean_acc, step=step)
                    tf.summary.scalar("train/learning_rate", lr, step=step)
                    if step_progress.rate is not None:
                        tf.summary.scalar("train/images_per_second",
                                          step_progress.rate * config.batch_size, step=step)
                    if use_identity:
                        tf.summary.scalar("train/identity_loss", float(id_loss), step=step)
                losses, accs = [], []
            if step % config.eval_every == 0 or final:
                evaluate_and_keep_best()  # may set stop_reason (early stop)
            if stop_reason is not None and not has_best():
                write_alexnet_checkpoint(alexnet, pretrained_dir, step)
                best_step.assign(step)
            # The final state (after the final evaluation) is always saved, so that a rerun
            # of a finished run, or of one killed after it, changes nothing.
            if (step % config.save_every == 0 or stop_reason is not None
                    or stop.received):
                elapsed.assign(run_elapsed())
                manager.save(checkpoint_number=step)
            if stop.received and stop_reason is None:
                writer.flush()
                print_fn(f"{stop.received} received: checkpoint written at step {step} "
                         f"({manager.latest_checkpoint}), exiting; run the same command to "
                         "resume")
                return {"stopped_by": stop.received, "step": step}
    writer.flush()
    if not has_best():  # e.g. resumed a run that ended before this version kept one
        write_alexnet_checkpoint(alexnet, pretrained_dir, int(step_var))
        best_step.assign(int(step_var))
    print_fn(f"stopped: {stop_reason}")

    best = os.path.join(pretrained_dir, f"alexnet-{int(best_step)}")
    if not os.path.exists(best + ".index"):
        best = checkpoints.resolve_checkpoint(pretrained_dir)
    load_alexnet_layers(best, alexnet, ALEXNET_LAYERS)
    report: Dict = {}
    if test_e:
        labels, preds = predict(alexnet, make_eval_dataset(test_e, root, config.eval_batch_size,
                                                           cache=False))
        report = classification_report(labels, preds, config.age_groups, names)
    report["verification"] = verification_reports(alexnet, data.verification_pairs,
                                                  config.verification_layer, print_fn)
    train_seconds = float(elapsed)
    steps = int(step_var)
    report.update({
        "split": "test",
        "checkpoint": best,
        "best_step": int(best_step),
        "best_validation_accuracy": float(best_acc) if val_e else None,
        "validation_score": ("mean of age accuracy and verification AUC" if val_ds is not None
                             and val_id_ds is not None else "verification AUC"
                             if val_id_ds is not None else "age accuracy"),
        "steps": steps,
        "batch_size": config.batch_size,
        "training_seconds": train_seconds,
        "images_per_second": steps * config.batch_size / train_seconds if train_seconds else None,
        "stop_reason": stop_reason,
        "train_images": len(train_e), "validation_images": len(val_e),
        "identity_trained": use_identity, "identities": num_ids if use_identity else 0,
        "trained_layers": list(layers), "list_dirs": data.list_dirs,
        "init": config.init_from or "scratch",
    })
    if test_e:
        write_report(report, os.path.join(out, "report.json"), os.path.join(out, "report.png"),
                     title=f"AlexNet age classifier, test split ({len(test_e)} images), "
                           f"step {int(best_step)}")
        print_fn(f"test: accuracy {report['accuracy']:.4f}, within one "
                 f"{report['within_one_accuracy']:.4f}, per-group recall "
                 + ", ".join(f"{g['name']} {g['recall']:.3f}" if g["recall"] is not None
                             else f"{g['name']} -" for g in report["per_group"]))
    else:
        write_json_atomic(os.path.join(out, "report.json"), report)
    print_fn(f"wrote {best} (use --alexnet_pretrained_model={best} "
             f"--age_pretrained_model={best}) and {os.path.join(out, 'report.json')}")
    return report
