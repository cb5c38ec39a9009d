"""Networks more than one model uses, kept apart from every model package.

- :mod:`face_aging.backbones.alexnet`: the release's AlexNet (identity and age heads) -- the
  frozen loss network of IPCGAN, the network ``python -m face_aging.pretrain`` trains, and the
  feature network of ``metrics`` (verification, the FID fallback) -- with its weight I/O.

This module imports no TensorFlow: flag modules and ``--help`` read these names.
"""

#: AlexNet layers the identity feature loss (and verification) can use (``fea_layer_name``).
FEATURE_LAYERS = ("conv3", "conv4", "conv5", "pool5", "fc6", "fc7")
#: Every output ``AlexNet.call`` can compute.
ALEXNET_OUTPUTS = FEATURE_LAYERS + ("identity_logits", "age_logits")

#: AlexNet layer groups: the shared trunk, the identity net's fc layers and head, the age head.
ALEXNET_TRUNK = ("conv1", "conv2", "conv3", "conv4", "conv5")
ALEXNET_IDENTITY = ("fc6", "fc7", "new_1", "new_2")
ALEXNET_AGE = ("age_fc6", "age_fc7", "age_fc8")
ALEXNET_LAYERS = ALEXNET_TRUNK + ALEXNET_IDENTITY + ALEXNET_AGE
