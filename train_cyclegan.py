"""Train CycleGAN young -> old faces (Zhu et al. 2017, the reference's cycle_gan recipe), e.g.:

    python train_cyclegan.py --young_dir=../shared/data/wiki_young_old/young \
        --old_dir=../shared/data/wiki_young_old/old --crop_size=128 \
        --checkpoint_dir=checkpoints/cyclegan_wiki128

Resumes from the latest checkpoint in --checkpoint_dir. --dry_run checks the options and
the data and prints them. docs/CYCLEGAN.md has the recipe and every flag.
"""
import dataclasses
import json
import sys

from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

prepare_tf_environment(sys.argv)  # before TensorFlow is imported

from absl import app, flags, logging

import cyclegan_flags
from face_aging import cli  # noqa: E402 -- like the flag modules, imports no TensorFlow

flags.adopt_module_key_flags(cyclegan_flags)  # --help / --helpshort list them


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    config = cyclegan_flags.config_from_flags()
    from face_aging.cyclegan import schedule
    from face_aging.cyclegan.data import DataError, load_domains
    from face_aging.cyclegan.training import (NonFiniteLossError, TrainingSetupError,
                                              check_config, train)
    try:
        if cyclegan_flags.FLAGS.dry_run:
            check_config(config)
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
        train(config, print_fn=lambda line: print(line, flush=True))
    except (DataError, TrainingSetupError, NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main, log_level="1")
