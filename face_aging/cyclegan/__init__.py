"""CycleGAN young-to-old face aging (Zhu et al. 2017), the reference recipe in TF2/Keras 3.

The reference is junyanz/pytorch-CycleGAN-and-pix2pix with its ``cycle_gan`` defaults;
docs/CYCLEGAN.md maps each of its options to a flag of ``train_cyclegan.py``.

- :mod:`~face_aging.cyclegan.layers`: instance norm, reflection padding, PyTorch-style
  transposed convolution, the normal(0, 0.02) initializer.
- :mod:`~face_aging.cyclegan.networks`: the ResNet generator and the 70x70 PatchGAN.
- :mod:`~face_aging.cyclegan.losses`: LSGAN / vanilla GAN losses, L1.
- :mod:`~face_aging.cyclegan.image_pool`: the 50-image history of generated faces.
- :mod:`~face_aging.cyclegan.schedule`: the 'linear' learning-rate policy.
- :mod:`~face_aging.cyclegan.data`: the two unpaired domains (folders or an age list).
- :mod:`~face_aging.cyclegan.config`, :mod:`~face_aging.cyclegan.flags`: the options of
  ``train_cyclegan.py`` (no TensorFlow).
- :mod:`~face_aging.cyclegan.trainer`: one training step and the training loop.
- :mod:`~face_aging.cyclegan.inference`, :mod:`~face_aging.cyclegan.export`,
  :mod:`~face_aging.cyclegan.evaluate`: using a trained run.

Domain A is young, domain B is old (the reference's names): ``g_a`` ages (A -> B),
``g_b`` rejuvenates (B -> A), ``d_a`` judges old faces, ``d_b`` young ones.
"""
