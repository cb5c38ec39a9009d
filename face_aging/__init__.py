"""face_aging: a faithful TensorFlow 2 / Keras port of IPCGAN face aging.

Wang, Tang, Luo, Gao, "Face Aging with Identity-Preserved Conditional Generative
Adversarial Networks", CVPR 2018. The release's behaviour is the default; every
improvement sits behind a flag or argument.
"""
__version__ = "0.1.0"
