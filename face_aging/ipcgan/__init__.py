"""IPCGAN (Wang et al., CVPR 2018), ported from the release: the conditional generator, the
PatchGAN discriminator, their losses, data, training, checkpoints, inference and export.

- :mod:`~face_aging.ipcgan.config`, :mod:`~face_aging.ipcgan.flags`: the options of
  ``train_ipcgan.py`` (no TensorFlow);
- :mod:`~face_aging.ipcgan.networks`, :mod:`~face_aging.ipcgan.losses`,
  :mod:`~face_aging.ipcgan.data`, :mod:`~face_aging.ipcgan.trainer`: training;
- :mod:`~face_aging.ipcgan.checkpoints`: the release's TF1 names and files;
- :mod:`~face_aging.ipcgan.inference`, :mod:`~face_aging.ipcgan.export`,
  :mod:`~face_aging.ipcgan.bundle`, :mod:`~face_aging.ipcgan.evaluate`: using a trained
  generator.

The frozen AlexNet of the losses is ``face_aging.backbones.alexnet``.
"""
