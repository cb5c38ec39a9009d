"""Analytic FLOP counts of the IPCGAN networks, from the layer tables of spec §1.

Convention: **one multiply-add counts as 2 FLOPs.** Only convolutions, transposed
convolutions and dense layers are counted (every multiply-add of them, including the
zero-padded border taps of ``SAME`` padding, as a dense kernel would execute them).
Bias adds, batch norm, activations, the condition concat and the bilinear resize are
elementwise and left out: together they are under 1% of the generator's count.

A layer is a :class:`Layer` record; ``macs`` is the multiply-adds of its forward pass for
one image. The backward pass of a linear layer costs one more forward's worth for the
gradient with respect to its input and one more for the gradient with respect to its
kernel; a step counts only those gradients it actually needs (the first layer of a
network fed by data needs no input gradient; a frozen network needs no kernel gradient).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

AGE_GROUPS = 5
ALEXNET_SIZE = 227


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # "conv", "deconv" or "dense"
    out_h: int
    out_w: int
    kernel: int
    in_channels: int
    out_channels: int
    groups: int = 1
    stride: int = 1

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward pass, one image."""
        k2 = self.kernel * self.kernel
        if self.kind == "deconv":
            # Every input pixel scatters a k x k x out patch: in_h * in_w * k^2 * in * out.
            in_h, in_w = self.out_h // self.stride, self.out_w // self.stride
            return in_h * in_w * k2 * self.in_channels * self.out_channels
        # conv (and dense as a 1x1 "conv" on a 1x1 map): each output value is a dot product
        # of length k^2 * in / groups.
        return self.out_h * self.out_w * k2 * (self.in_channels // self.groups) * self.out_channels


def _same(size: int, stride: int) -> int:
    return -(-size // stride)


def _valid(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def generator_layers(image_size: int = 128, age_groups: int = AGE_GROUPS) -> List[Layer]:
    """Spec §1.1, in order."""
    s1, s2, s4 = image_size, _same(image_size, 2), _same(image_size, 4)
    layers = [Layer("conv1", "conv", s1, s1, 7, 3 + age_groups, 32),
              Layer("conv2", "conv", s2, s2, 3, 32, 64, stride=2),
              Layer("conv3", "conv", s4, s4, 3, 64, 128, stride=2)]
    for i in range(6):
        layers += [Layer(f"unit_{i}/sub1/conv1", "conv", s4, s4, 3, 128, 128),
                   Layer(f"unit_{i}/sub2/conv2", "conv", s4, s4, 3, 128, 128)]
    layers += [Layer("deconv1", "deconv", s2, s2, 3, 128, 64, stride=2),
               Layer("deconv2", "deconv", s1, s1, 3, 64, 32, stride=2),
               Layer("conv4", "conv", s1, s1, 7, 32, 3)]
    return layers


def discriminator_layers(image_size: int = 128, age_groups: int = AGE_GROUPS,
                         output_channels: int = 512) -> List[Layer]:
    """Spec §1.2, in order (the condition is concatenated after ``dis``)."""
    s2, s4, s8 = _same(image_size, 2), _same(image_size, 4), _same(image_size, 8)
    return [Layer("dis", "conv", s2, s2, 4, 3, 64, stride=2),
            Layer("dis_1", "conv", s4, s4, 4, 64 + age_groups, 128, stride=2),
            Layer("dis_2", "conv", s8, s8, 4, 128, 256, stride=2),
            Layer("dis_3", "conv", s8, s8, 4, 256, 512),
            Layer("dis_4", "conv", s8, s8, 4, 512, output_channels)]


def alexnet_layers(fea_layer_name: str = "conv5", age_head: bool = True,
                   identity_head: bool = False, age_groups: int = AGE_GROUPS) -> List[Layer]:
    """Spec §1.3: the layers the training step runs for a feature layer and heads."""
    c1 = _valid(ALEXNET_SIZE, 11, 4)          # 55
    p1 = _valid(c1, 3, 2)                      # 27
    p2 = _valid(p1, 3, 2)                      # 13
    p5 = _valid(p2, 3, 2)                      # 6
    layers = [Layer("conv1", "conv", c1, c1, 11, 3, 96, stride=4),
              Layer("conv2", "conv", p1, p1, 5, 96, 256, groups=2),
              Layer("conv3", "conv", p2, p2, 3, 256, 384),
              Layer("conv4", "conv", p2, p2, 3, 384, 384, groups=2),
              Layer("conv5", "conv", p2, p2, 3, 384, 256, groups=2)]
    flat = p5 * p5 * 256
    if fea_layer_name in ("fc6", "fc7") or identity_head:
        layers += [Layer("fc6", "dense", 1, 1, 1, flat, 4096),
                   Layer("fc7", "dense", 1, 1, 1, 4096, 4096)]
    if identity_head:
        layers += [Layer("new_1", "dense", 1, 1, 1, 4096, 256),
                   Layer("new_2", "dense", 1, 1, 1, 256, 2000)]
    if age_head:
        layers += [Layer("age_fc6", "dense", 1, 1, 1, flat, 4096),
                   Layer("age_fc7", "dense", 1, 1, 1, 4096, 4096),
                   Layer("age_fc8", "dense", 1, 1, 1, 4096, age_groups)]
    return layers


def forward_flops(layers: Sequence[Layer], batch: int = 1) -> int:
    return 2 * batch * sum(layer.macs for layer in layers)


def backward_flops(layers: Sequence[Layer], batch: int = 1, kernel_grads: bool = True,
                   input_grad_of_first: bool = False) -> int:
    """FLOPs of the backward pass: input gradients of every layer (the first only if asked)
    plus kernel gradients of every layer if the network is being trained."""
    macs = sum(layer.macs for layer in layers)
    input_macs = macs if input_grad_of_first else macs - layers[0].macs
    return 2 * batch * (input_macs + (macs if kernel_grads else 0))


def generator_flops(image_size: int = 128, batch: int = 1, age_groups: int = AGE_GROUPS) -> int:
    """Forward (inference) FLOPs of the generator for ``batch`` images."""
    return forward_flops(generator_layers(image_size, age_groups), batch)


def discriminator_flops(image_size: int = 128, batch: int = 1, age_groups: int = AGE_GROUPS,
                        output_channels: int = 512) -> int:
    return forward_flops(discriminator_layers(image_size, age_groups, output_channels), batch)


def alexnet_flops(batch: int = 1, fea_layer_name: str = "conv5", age_head: bool = True) -> int:
    return forward_flops(alexnet_layers(fea_layer_name, age_head), batch)


def train_step_flops(image_size: int = 128, batch: int = 1, step_structure: str = "reuse",
                     fea_layer_name: str = "conv5", age_groups: int = AGE_GROUPS,
                     output_channels: int = 512) -> Dict[str, int]:
    """FLOPs of one ``IPCGANTrainer.train_step`` (spec §2), by part, and ``total``.

    Parts: AlexNet on the source faces (forward, trunk to the feature layer); the generator
    forward (twice for ``"release"``); the D update (three D forwards on three batches and
    their backward: kernel gradients everywhere, no input gradient into the images); the G
    update's D forward and its backward to the fake image (input gradients only); AlexNet on
    the fake faces (trunk + age head) and its backward to the image (input gradients only);
    the generator backward (kernel gradients, no input gradient into the source face).
    """
    g = generator_layers(image_size, age_groups)
    d = discriminator_layers(image_size, age_groups, output_channels)
    a_src = alexnet_layers(fea_layer_name, age_head=False)
    a_fake = alexnet_layers(fea_layer_name, age_head=True)
    g_forwards = 2 if step_structure == "release" else 1
    parts = {
        "alexnet_source_forward": forward_flops(a_src, batch),
        "generator_forward": g_forwards * forward_flops(g, batch),
        "d_update": 3 * (forward_flops(d, batch) + backward_flops(d, batch)),
        "g_update_discriminator": forward_flops(d, batch) + backward_flops(
            d, batch, kernel_grads=False, input_grad_of_first=True),
        "g_update_alexnet": forward_flops(a_fake, batch) + backward_flops(
            a_fake, batch, kernel_grads=False, input_grad_of_first=True),
        "generator_backward": backward_flops(g, batch),
    }
    parts["total"] = sum(parts.values())
    return parts
