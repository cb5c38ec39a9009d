"""The training loop of ``train_ipcgan.py``: data, models, AlexNet, checkpoints, samples, logs.

Takes a :class:`face_aging.config.TrainConfig`; never reads flags.

What a checkpoint holds (``tf.train.Checkpoint``, written by a ``CheckpointManager``):
generator, discriminator, both optimizers, the step, and the input iterator's position
(tf.data iterators are checkpointable: shuffle order, label-pair cursor, buffered
batches; left out with ``cache``, whose shuffle buffer would hold the decoded dataset).
Restarting the same command after a kill continues exactly where the last checkpoint left
off; with ``deterministic`` the weights then equal an uninterrupted run's. With a strategy
(``face_aging.distribute``) the chief writes the checkpoint and other workers only their
input position.
A checkpoint is complete before the manager points to it, so a kill during a save leaves
the previous one as the latest.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import tempfile
from typing import Callable, Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from face_aging import checkpoints, distribute, pixels, precision, sampling
from face_aging.progress import TrainingProgress
from face_aging.config import TrainConfig
from face_aging.data.pipeline import make_train_dataset
from face_aging.models import AlexNet, Discriminator, Generator, build_models, one_hot_age
from face_aging.training import IPCGANTrainer

log = logging.getLogger("face_aging")

from face_aging.config import NAN_POLICIES  # TF-free home; still importable from here


class TrainingSetupError(ValueError):
    """The run cannot start as configured (the message says why, in one line)."""


class NonFiniteLossError(RuntimeError):
    """A step produced non-finite numbers under ``nan_policy="stop"`` (nothing was applied)."""


def configure_determinism(seed: int, deterministic: bool) -> None:
    """Seeds Python, numpy and TF (``keras.utils.set_random_seed``); optionally determinism.

    Determinism = TF op determinism, one intra-op thread and no Grappler rewrites of the
    traced step (the step runs as traced). Measured here:

    - with several intra-op threads, two identical runs differed in the last bits of the
      generator's gradients (a reduction split by load), even with op determinism and oneDNN
      off;
    - with Grappler on, about one fresh process in four computed the discriminator's first
      ``dis_4`` gradients differently in the last bits: Grappler rewrites the graph once per
      process and its result varied between processes. With ``disable_meta_optimizer``, 0 of
      13 differed, and 12 fresh ``train_ipcgan.py`` runs gave one result
      (docs/BENCHMARKS.md, "Determinism").
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
        except RuntimeError:  # TF already initialised in this process: keep its threads
            log.warning("deterministic: could not limit intra-op threads (TF already running)")


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
        checkpoints.load_alexnet_layers(config.alexnet_pretrained_model, alexnet,
                                        checkpoints.ALEXNET_TRUNK + checkpoints.ALEXNET_IDENTITY)
    if config.age_pretrained_model is not None:
        if config.alexnet_pretrained_model is None:
            checkpoints.load_alexnet_layers(config.age_pretrained_model, alexnet,
                                            checkpoints.ALEXNET_TRUNK)
        checkpoints.load_alexnet_layers(config.age_pretrained_model, alexnet,
                                        checkpoints.ALEXNET_AGE)


def probe_writable(directories, needed_bytes: int = 0) -> None:
    """Creates each directory, writes and removes a probe file, checks free space.

    Raises:
      TrainingSetupError: one line naming the directory and the problem.
    """
    for directory in directories:
        try:
            os.makedirs(directory, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=directory, prefix=".write_probe_")
            with os.fdopen(fd, "wb") as f:
                f.write(b"\0" * 4096)
            os.remove(probe)
        except OSError as e:
            raise TrainingSetupError(f"{directory}: not writable ({e.strerror or e})") from None
        free = shutil.disk_usage(directory).free
        if free < needed_bytes:
            raise TrainingSetupError(f"{directory}: {free / 2**20:.0f} MiB free, a checkpoint "
                                     f"needs about {needed_bytes / 2**20:.0f} MiB")


def write_json_atomic(path: str, payload) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


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
        grids = {"source": sampling.image_grid(sources.astype(np.uint8))}
        for group in range(self.generator.age_groups):
            age = one_hot_age(tf.fill([n], group), self.generator.age_groups)
            fake = self.generator((self.source_128, age), training=False,
                                  batch_stats=self.batch_stats)
            grids[f"group{group}"] = sampling.image_grid(pixels.to_uint8(fake.numpy()))
        sampling.write_step_images(self.sample_dir, step, grids, self.summary_writer)
        return grids


class _StopSignal:
    """Turns SIGTERM / SIGINT into a flag the loop checks between steps."""

    def __init__(self):
        self.received: Optional[str] = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _build(config: TrainConfig, synchronized_bn: bool = False):
    with precision.keras_policy(config.mixed_precision):
        generator = Generator(config.age_groups, config.bn_epsilon, synchronized_bn)
        discriminator = Discriminator(config.age_groups, config.bn_epsilon,
                                      config.d_output_channels, synchronized_bn)
        alexnet = AlexNet(config.age_groups)
        build_models(generator, discriminator, alexnet, config.image_size)
    return generator, discriminator, alexnet


def _save(manager, input_manager, step: int, print_fn) -> None:
    """Chief: the checkpoint. Another worker: its input position, and its copy of the models
    into its scratch folder, deleted at once (every worker takes part in a save)."""
    path = manager.save(checkpoint_number=step)
    if input_manager is None:
        print_fn(f"saved {path}")
        return
    input_manager.save(checkpoint_number=step)
    distribute.remove_scratch(manager.directory)


def _checkpoint_bytes(*models) -> int:
    # weights + two Adam slots per trainable weight, with some slack for the iterator state
    params = sum(int(np.prod(v.shape)) for m in models for v in m.variables)
    return int(params * 4 * 3 * 1.2)


def train(config: TrainConfig, print_fn: Callable[[str], None] = print) -> Dict[str, float]:
    """Runs (or resumes) training to ``config.max_steps``.

    Returns:
      the last logged losses, ``step``, and ``stopped_by`` (a signal name) if a signal ended it.
    Raises:
      TrainingSetupError: before any step, with one line saying what is wrong.
      NonFiniteLossError: a step was not finite under ``nan_policy="stop"``.
    """
    if config.nan_policy not in NAN_POLICIES:
        raise TrainingSetupError(f"nan_policy {config.nan_policy!r}: choose from {NAN_POLICIES}")
    config = config.resolved()
    configure_determinism(config.seed, config.deterministic)
    try:  # before any other TF work: a strategy configures the runtime
        strategy = distribute.make_strategy(config.distribution, config.logical_cpu_devices)
    except distribute.DistributionError as e:
        raise TrainingSetupError(str(e)) from None
    if strategy is not None and strategy.num_replicas_in_sync == 1 and (
            distribute.worker_info(strategy)["num_workers"] == 1):
        print_fn(f"--distribution={config.distribution}: one device found; training on it "
                 "without a strategy")
        strategy = None
    info = distribute.worker_info(strategy)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if config.reconstruction_steps and strategy is not None:
        raise TrainingSetupError("--reconstruction_steps runs on one device; start the "
                                 "distributed run from its checkpoint with "
                                 "--source_checkpoint_dir")
    if config.batch_size % replicas:
        raise TrainingSetupError(f"batch_size {config.batch_size} (the global batch) does not "
                                 f"divide over {replicas} replicas")

    def make_dataset(seed, cache=config.cache):
        return make_train_dataset(config.list_dir, config.root_folder,
                                  config.batch_size // info["num_workers"], config.age_groups,
                                  config.image_size, seed, config.source_file, cache,
                                  info["num_workers"], info["worker_index"],
                                  config.per_sample_targets)

    dataset = make_dataset(config.seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        generator, discriminator, alexnet = _build(
            config, synchronized_bn=strategy is not None and config.synchronized_bn)
        # The chief writes checkpoints, samples and logs; another worker only its scratch copy.
        own_dir = (config.checkpoint_dir if info["is_chief"]
                   else distribute.scratch_dir(config.checkpoint_dir, info["worker_index"]))
        probe_writable([own_dir, config.sample_dir, config.tensorboard_dir] if info["is_chief"]
                       else [own_dir], _checkpoint_bytes(generator, discriminator))
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

    step = tf.Variable(0, dtype=tf.int64, name="step")
    iterator = iter(dataset)
    models = dict(generator=generator, discriminator=discriminator,
                  g_optimizer=trainer.g_optimizer, d_optimizer=trainer.d_optimizer, step=step)
    if config.reconstruction_steps:
        models["r_optimizer"] = trainer.r_optimizer
    # With --cache the iterator's state would hold the whole decoded dataset (its shuffle
    # buffer: 3.9 GB at 64 px on UTKFace), so it stays out of the checkpoint; a resumed run
    # then reshuffles from seed + step (reproducible, not the uninterrupted run's order).
    inputs = {} if config.cache else {"data_iterator": iterator}
    checkpoint = tf.train.Checkpoint(**models, **inputs)
    manager = tf.train.CheckpointManager(checkpoint, own_dir, max_to_keep=config.max_to_keep,
                                         checkpoint_name="ckpt")
    # A non-chief worker's input position lives in its own small checkpoint (its shard).
    input_manager = None if info["is_chief"] or config.cache else tf.train.CheckpointManager(
        tf.train.Checkpoint(data_iterator=iterator, step=step),
        os.path.join(config.checkpoint_dir, f"input_worker_{info['worker_index']}"),
        max_to_keep=config.max_to_keep, checkpoint_name="input")
    latest = tf.train.latest_checkpoint(config.checkpoint_dir)
    if latest and info["is_chief"]:
        try:
            status = checkpoint.restore(latest).assert_existing_objects_matched()
            if config.cache:  # an input position saved without --cache is not used
                status.expect_partial()
        except AssertionError as e:
            raise TrainingSetupError(f"{latest} does not hold what this run needs (written "
                                     f"with other options, e.g. --cache?): "
                                     f"{str(e).splitlines()[0][:200]}") from None
        print_fn(f"resumed from {latest} at step {int(step.numpy())}")
    elif latest:
        tf.train.Checkpoint(**models).restore(latest).expect_partial()
        resumed = int(step.numpy())
        own = input_manager and os.path.join(input_manager.directory, f"input-{resumed}")
        if own and os.path.exists(own + ".index"):
            tf.train.Checkpoint(data_iterator=iterator).restore(own).expect_partial()
        elif own:
            print_fn(f"worker {info['worker_index']}: no input position for step {resumed}; "
                     "its data order starts afresh")
        print_fn(f"resumed from {latest} at step {resumed}")
    elif config.source_checkpoint_dir:
        prefix = checkpoints.restore_models(config.source_checkpoint_dir, generator,
                                            discriminator, config.model_index)
        print_fn(f"initialised generator and discriminator from {prefix}")
    if config.cache and int(step.numpy()) > 0:
        iterator = iter(make_dataset(config.seed + int(step.numpy())))
        print_fn(f"--cache: data order reshuffled from seed {config.seed} + step "
                 f"{int(step.numpy())} (the input position is not checkpointed with --cache)")

    if info["is_chief"]:
        write_json_atomic(os.path.join(config.checkpoint_dir, "training_options.json"),
                          dataclasses.asdict(config))
    summary_writer = (tf.summary.create_file_writer(config.tensorboard_dir) if info["is_chief"]
                      else tf.summary.create_noop_writer())
    # A fixed source batch for the sample grids, from a separate, uncached pipeline: the
    # training iterator's position is part of the checkpoint and must not move for it, and
    # with --cache a second iterator would decode the whole dataset again into its own
    # shuffle buffer just for one batch.
    sample_batch = next(iter(make_dataset(config.seed, cache=False)))["source_128"]
    samples = SampleWriter(generator, sample_batch, config.sample_dir, summary_writer,
                           batch_stats=not config.per_sample_targets)

    start_step = int(step.numpy())
    if start_step >= config.max_steps:
        print_fn(f"already at step {start_step} >= max_steps {config.max_steps}: nothing to do")
        return {"step": start_step}
    logged: Dict[str, float] = {}
    progress = TrainingProgress(config.max_steps, start_step, config.log_interval)
    print_fn(progress.compiling_line())
    with _StopSignal() as stop:
        while int(step.numpy()) < config.max_steps:
            batch = next(iterator)
            if strategy is not None:
                batch = distribute.split_batch(strategy, batch, info["local_replicas"])
            done = int(step.numpy())
            if done < config.reconstruction_steps:
                out = trainer.reconstruction_step(batch, [config.seed, done])
            else:
                if done == config.reconstruction_steps > 0:
                    print_fn(f"step {done}: reconstruction start done; GAN training from here")
                out = trainer.train_step(batch)
            current = done + 1
            if not bool(out.pop("finite")):
                bad = [k for k, v in out.items() if not np.isfinite(float(v))] or ["weights"]
                line = (f"step {current}: non-finite {', '.join(bad)}; the step was not applied "
                        f"(last good checkpoint: {manager.latest_checkpoint or 'none'})")
                if config.nan_policy == "stop":
                    raise NonFiniteLossError(line)
                print_fn(line + "; skipping it (--nan_policy=skip)")
            step.assign(current)
            last = current == config.max_steps
            if progress.step_done(current):  # every log_interval steps and every few seconds
                logged = {k: float(v) for k, v in out.items()}
                print_fn(f"step {current}/{config.max_steps}  "
                         + "  ".join(f"{k} {v:.4f}" for k, v in logged.items())
                         + f"  | {progress.status()}")
                with summary_writer.as_default():
                    for name, value in logged.items():
                        tf.summary.scalar(f"loss/{name}", value, step=current)
                    if progress.rate is not None:
                        tf.summary.scalar("steps_per_second", progress.rate, step=current)
            if info["is_chief"] and (current % config.sample_interval == 0 or last):
                samples.write(current)
            stopping = distribute.any_worker(strategy, stop.received is not None)
            if current % config.save_interval == 0 or last or stopping:
                _save(manager, input_manager, current, print_fn)
            if stopping:
                signal_name = stop.received or "a stop signal to another worker"
                print_fn(f"{signal_name} received: checkpoint written at step {current}, "
                         "exiting; run the same command to resume")
                logged["stopped_by"] = signal_name
                break
    summary_writer.flush()
    logged["step"] = int(step.numpy())
    return logged
