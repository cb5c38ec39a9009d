"""The central place of ``train_ipcgan.py``'s flags: importing this module defines them on
absl's global FLAGS (listed in ``--helpshort`` of the script that imports it).

The definitions -- every flag, its default, its help and its validators -- are in
``face_aging/ipcgan/flags.py`` (:func:`define_flags`), so that the installed package has them
too; :func:`config_from_flags` turns the parsed flags into a ``TrainConfig``.
"""
from absl import flags as _absl_flags

from face_aging import cli as _cli
from face_aging.ipcgan.flags import config_from_flags, define_flags

__all__ = ["FLAGS", "config_from_flags", "define_flags"]

FLAGS = _absl_flags.FLAGS
if "fea_layer_name" not in FLAGS:  # once per process
    _cli.define_key_flags(define_flags, FLAGS)
