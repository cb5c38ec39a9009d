"""AlexNet pretraining (``python -m face_aging.pretrain``): the network of
``face_aging.backbones.alexnet`` trained here on age (and identity) labels.

- :mod:`~face_aging.alexnet.config`, :mod:`~face_aging.alexnet.flags`: the options (no
  TensorFlow);
- :mod:`~face_aging.alexnet.data`: the prepared folders, the validation split, the training
  stream;
- :mod:`~face_aging.alexnet.networks`: the forward pass with dropout, the starting weights,
  the optimizer;
- :mod:`~face_aging.alexnet.validation`, :mod:`~face_aging.alexnet.report`: validation and
  the test report;
- :mod:`~face_aging.alexnet.trainer`: the run (``pretrain``: its plan and hooks on the
  engine's loop, ``face_aging.engine.loop``);
- :mod:`~face_aging.alexnet.formats`: ``bvlc_alexnet.npy`` read safely, best weights written.
"""
