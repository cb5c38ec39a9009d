"""``python train_cyclegan.py``: train CycleGAN young -> old faces (Zhu et al. 2017, the
reference's cycle_gan recipe), e.g.::

    python train_cyclegan.py --young_dir=../shared/data/wiki_young_old/young \\
        --old_dir=../shared/data/wiki_young_old/old --crop_size=128 \\
        --checkpoint_dir=checkpoints/cyclegan_wiki128

Resumes from the latest checkpoint in --checkpoint_dir. --dry_run checks the options and
the data and prints them. docs/CYCLEGAN.md has the recipe and every flag
(``face_aging.cyclegan.flags``); the training is ``face_aging.cyclegan.trainer.train``.
"""
import dataclasses
import json
import sys

from face_aging import registry

#: The model this command trains (its flags, options and loop: ``face_aging.registry``).
MODEL = "cyclegan"


def define_flags(flag_values) -> None:
    """The flags of ``train_cyclegan.py`` (``face_aging.cyclegan.flags``) on ``flag_values``."""
    registry.resolve(MODEL, "define_flags")(flag_values)


def dry_run(config) -> int:
    """--dry_run: the options checked, the data read, both printed; nothing written."""
    from face_aging.cyclegan import schedule
    from face_aging.cyclegan.data import load_domains
    from face_aging.cyclegan.trainer import validate

    validate(config)
    resolved = config.resolved()
    domains = load_domains(resolved.young_dir, resolved.old_dir, resolved.age_list,
                           resolved.age_list_root, resolved.young_max_age,
                           resolved.old_min_age, resolved.max_dataset_size,
                           resolved.batch_size)
    steps_per_epoch = domains.steps_per_epoch(resolved.batch_size)
    options = dataclasses.asdict(resolved)
    options.update(young_images=len(domains.young), old_images=len(domains.old),
                   skipped_images=len(domains.skipped), steps_per_epoch=steps_per_epoch,
                   schedule_steps=schedule.total_steps(
                       steps_per_epoch, resolved.n_epochs, resolved.n_epochs_decay))
    if domains.skipped:
        print(domains.summary(), file=sys.stderr)
    print(json.dumps(options, indent=2, sort_keys=True))
    return 0


def main(argv, flag_values=None) -> int:
    from absl import app, flags, logging

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    config = registry.resolve(MODEL, "config_from_flags")(flag_values)
    from face_aging.errors import FaceAgingError

    try:
        if flag_values.dry_run:
            return dry_run(config)
        registry.resolve(MODEL, "train")(config, print_fn=lambda line: print(line, flush=True))
    except FaceAgingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def run(flag_values=None) -> None:
    """The command: the flags on ``flag_values`` (default absl's FLAGS), parsed, then
    :func:`main`."""
    from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

    prepare_tf_environment(sys.argv)  # before TensorFlow is imported
    from absl import flags

    from face_aging import cli

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    cli.define_key_flags(define_flags, flag_values)
    cli.run(lambda argv: main(argv, flag_values), log_level="1", flag_values=flag_values,
            doc=__doc__)


if __name__ == "__main__":
    run()
