"""The IPCGAN release's forward maths in plain numpy, written from the specification of the
release (IPCGAN_SPEC.md §1-§3), not from this project's code: nothing here imports
``face_aging`` or TensorFlow.

It is the independent reference the port is checked against (tests/test_release_maths.py)
and what wrote ``release_reference.npz`` (make_release_reference.py). Everything runs in
float64. Conventions: NHWC, RGB, kernels ``[kh, kw, in, out]``, transposed-conv kernels
``[kh, kw, out, in]``, dense kernels ``[in, out]``; ``weights`` maps the release's TF1
variable names (spec §6, e.g. ``generator/unit_3/sub2/conv2/weights``) to arrays.

TF semantics spelt out where the spec names a TF op:
- ``SAME`` padding: ``out = ceil(in / stride)``, total padding
  ``max((out - 1) * stride + k - in, 0)``, the smaller half at the top/left;
- ``conv2d_transpose(SAME)``: the adjoint of that convolution for an output of
  ``in * stride``;
- ``local_response_normalization``: ``x / (bias + alpha * sum_{|c'-c| <= r} x_c'^2) ** beta``
  (alpha is *not* divided by the window size, unlike Caffe's);
- ``resize_bilinear`` (TF1, ``align_corners=False``, no half-pixel centres): source coordinate
  ``dst * in / out``, neighbours ``floor`` and ``min(ceil, in - 1)``.
"""
from __future__ import annotations

import numpy as np

#: Caffe's BGR means, subtracted from RGB pixels (spec §3).
MEAN = np.array([104.0, 117.0, 124.0])
BN_EPSILON = 1e-3
LRELU_LEAK = 0.2
LRN = dict(depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0)
ALEXNET_SIZE = 227
FEATURE_LAYERS = ("conv3", "conv4", "conv5", "pool5", "fc6", "fc7")


# ----------------------------------------------------------------------------- ops

def same_padding(size: int, kernel: int, stride: int):
    """(before, after) padding of TF's SAME for one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d(x, w, b, stride=1, padding="SAME"):
    """``x`` [B, H, W, C] (*) ``w`` [kh, kw, C, O] + ``b`` [O]."""
    x = np.asarray(x, np.float64)
    kh, kw, c, o = w.shape
    assert x.shape[-1] == c, (x.shape, w.shape)
    if padding == "SAME":
        (top, bottom), (left, right) = (same_padding(x.shape[1], kh, stride),
                                        same_padding(x.shape[2], kw, stride))
    else:
        top = bottom = left = right = 0
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    windows = windows[:, ::stride, ::stride][:, :out_h, :out_w]  # [B, oh, ow, C, kh, kw]
    y = np.tensordot(windows, np.asarray(w, np.float64), axes=([4, 5, 3], [0, 1, 2]))
    return y + np.asarray(b, np.float64)


def grouped_conv2d(x, w, b, groups=2, stride=1, padding="SAME"):
    """Input channels and the kernel's output channels split in ``groups`` halves, half
    convolved with half, results concatenated; the kernel is stored whole
    ``[kh, kw, C / groups, O]`` (spec §1.3)."""
    xs = np.split(np.asarray(x, np.float64), groups, axis=-1)
    ws = np.split(w, groups, axis=-1)
    bs = np.split(b, groups)
    return np.concatenate([conv2d(xi, wi, bi, stride, padding)
                           for xi, wi, bi in zip(xs, ws, bs)], axis=-1)


def conv2d_transpose(x, w, b, stride=2):
    """TF's ``conv2d_transpose(SAME)`` to ``[B, H * stride, W * stride, O]``, ``w`` [kh, kw, O, C]."""
    x = np.asarray(x, np.float64)
    batch, h, wd, _ = x.shape
    kh, kw, o, _ = w.shape
    out_h, out_w = h * stride, wd * stride
    top, left = same_padding(out_h, kh, stride)[0], same_padding(out_w, kw, stride)[0]
    full = np.zeros((batch, (h - 1) * stride + kh, (wd - 1) * stride + kw, o))
    for i in range(kh):
        for j in range(kw):
            # input pixel p reaches output row p * stride + i - top (the adjoint of SAME)
            full[:, i:i + (h - 1) * stride + 1:stride, j:j + (wd - 1) * stride + 1:stride] += \
                x @ np.asarray(w[i, j], np.float64).T
    return full[:, top:top + out_h, left:left + out_w] + np.asarray(b, np.float64)


def dense(x, w, b, rows_at_a_time=2048):
    """``x @ w + b``; the float64 copy of ``w`` is made a block of rows at a time."""
    x = np.asarray(x, np.float64)
    y = np.zeros((x.shape[0], w.shape[1]))
    for start in range(0, w.shape[0], rows_at_a_time):
        y += x[:, start:start + rows_at_a_time] @ np.asarray(w[start:start + rows_at_a_time],
                                                             np.float64)
    return y + np.asarray(b, np.float64)


def batch_norm(x, beta, gamma, epsilon=BN_EPSILON):
    """The current batch's statistics (spec §1.4): mean and population variance over B, H, W."""
    mean = x.mean(axis=(0, 1, 2))
    variance = ((x - mean) ** 2).mean(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def relu(x):
    return np.maximum(x, 0.0)


def lrelu(x, leak=LRELU_LEAK):
    return np.maximum(x, leak * x)


def max_pool(x, size=3, stride=2):
    """VALID max pooling."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    return windows[:, ::stride, ::stride].max(axis=(-2, -1))


def local_response_normalization(x, depth_radius, alpha, beta, bias):
    squares = np.pad(x ** 2, ((0, 0), (0, 0), (0, 0), (depth_radius, depth_radius)))
    window = sum(squares[..., k:k + x.shape[-1]] for k in range(2 * depth_radius + 1))
    return x / (bias + alpha * window) ** beta


def condition_map(age_vector, height, width):
    """``[B, N]`` age vector -> ``[B, height, width, N]`` (channel k filled with weight k)."""
    age_vector = np.asarray(age_vector, np.float64)
    return np.broadcast_to(age_vector[:, None, None, :], (len(age_vector), height, width,
                                                          age_vector.shape[1]))


def resize_bilinear_tf1(images, height, width):
    """TF1 ``resize_bilinear`` (``align_corners=False``, ``half_pixel_centers=False``)."""
    images = np.asarray(images, np.float64)
    in_h, in_w = images.shape[1:3]

    def axis(out_size, in_size):
        source = np.arange(out_size) * (in_size / out_size)
        lower = np.floor(source).astype(int)
        upper = np.minimum(np.ceil(source).astype(int), in_size - 1)
        return lower, upper, source - lower

    y0, y1, fy = axis(height, in_h)
    x0, x1, fx = axis(width, in_w)
    top = images[:, y0][:, :, x0] + (images[:, y0][:, :, x1] - images[:, y0][:, :, x0]) \
        * fx[None, None, :, None]
    bottom = images[:, y1][:, :, x0] + (images[:, y1][:, :, x1] - images[:, y1][:, :, x0]) \
        * fx[None, None, :, None]
    return top + (bottom - top) * fy[None, :, None, None]


# ----------------------------------------------------------------------------- networks

def _conv(weights, scope, x, stride=1, padding="SAME"):
    return conv2d(x, weights[f"{scope}/weights"], weights[f"{scope}/biases"], stride, padding)


def _bn(weights, scope, x, epsilon=BN_EPSILON):
    return batch_norm(x, weights[f"{scope}/beta"], weights[f"{scope}/gamma"], epsilon)


def generator(weights, source, age_vector):
    """Spec §1.1 with batch statistics. ``source``: RGB 0..255 minus MEAN, [B, H, W, 3]."""
    w = weights
    b, h, wd, _ = source.shape
    x = np.concatenate([np.asarray(source, np.float64), condition_map(age_vector, h, wd)], -1)
    x = relu(_bn(w, "generator/bn1", _conv(w, "generator/conv1", x)))
    x = relu(_bn(w, "generator/bn2", _conv(w, "generator/conv2", x, 2)))
    x = relu(_bn(w, "generator/bn3", _conv(w, "generator/conv3", x, 2)))
    for i in range(6):
        unit = f"generator/unit_{i}"
        y = relu(_bn(w, f"{unit}/sub1/bn1", _conv(w, f"{unit}/sub1/conv1", x)))
        x = x + _bn(w, f"{unit}/sub2/bn2", _conv(w, f"{unit}/sub2/conv2", y))
    for deconv, bn in (("deconv1", "bn4"), ("deconv2", "bn5")):
        x = conv2d_transpose(x, w[f"generator/{deconv}/weights"], w[f"generator/{deconv}/biases"])
        x = relu(_bn(w, f"generator/{bn}", x))
    return np.tanh(_conv(w, "generator/conv4", x))


def discriminator(weights, images, age_vector):
    """Spec §1.2 with batch statistics: logits [B, H/8, W/8, channels of dis_4]."""
    w = weights
    x = lrelu(_conv(w, "discriminator/dis", images, 2))
    x = np.concatenate([x, condition_map(age_vector, x.shape[1], x.shape[2])], -1)
    x = lrelu(_bn(w, "discriminator/dis_bn0", _conv(w, "discriminator/dis_1", x, 2)))
    x = lrelu(_bn(w, "discriminator/dis_bn1", _conv(w, "discriminator/dis_2", x, 2)))
    x = lrelu(_bn(w, "discriminator/dis_bn2", _conv(w, "discriminator/dis_3", x, 1)))
    return _conv(w, "discriminator/dis_4", x, 1)


def alexnet(weights, images_227):
    """Spec §1.3. ``images_227``: RGB 0..255 minus MEAN. Returns every feature (after its relu),
    ``identity_logits`` and ``age_logits``."""
    w = weights

    def grouped(scope, x):
        return grouped_conv2d(x, w[f"alexnet/{scope}/weights"], w[f"alexnet/{scope}/biases"])

    def fc(scope, x):
        return dense(x, w[f"alexnet/{scope}/weights"], w[f"alexnet/{scope}/biases"])

    out = {}
    x = relu(_conv(w, "alexnet/conv1", images_227, 4, "VALID"))
    x = local_response_normalization(max_pool(x), **LRN)
    x = relu(grouped("conv2", x))
    x = local_response_normalization(max_pool(x), **LRN)
    out["conv3"] = x = relu(_conv(w, "alexnet/conv3", x))
    out["conv4"] = x = relu(grouped("conv4", x))
    out["conv5"] = x = relu(grouped("conv5", x))
    out["pool5"] = pool5 = max_pool(x)
    flat = pool5.reshape(len(pool5), -1)  # 6 x 6 x 256 = 9216, row-major (h, w, c)
    out["fc6"] = x = relu(fc("fc6", flat))
    out["fc7"] = x = relu(fc("fc7", x))
    out["identity_logits"] = fc("new_2", relu(fc("new_1", x)))
    y = relu(fc("age_fc6", flat))
    y = relu(fc("age_fc7", y))
    out["age_logits"] = fc("age_fc8", y)
    return out


# ----------------------------------------------------------------------------- pixels, losses

def generated_to_alexnet(fake):
    """G output in [-1, 1] -> AlexNet input: (x + 1) * 127.5, TF1 bilinear to 227, minus MEAN."""
    return resize_bilinear_tf1((np.asarray(fake, np.float64) + 1.0) * 127.5, ALEXNET_SIZE,
                               ALEXNET_SIZE) - MEAN


def lsgan_d_loss(d1, d2, d3):
    """Unweighted ``0.5 * (mean((D1 - 1)^2) + 0.5 * (mean(D2^2) + mean(D3^2)))``."""
    return 0.5 * (np.mean((d1 - 1.0) ** 2) + 0.5 * (np.mean(d2 ** 2) + np.mean(d3 ** 2)))


def lsgan_g_loss(d3):
    return 0.5 * np.mean((d3 - 1.0) ** 2)


def msum(a, b):
    """Per-sample sum of squared differences, averaged over the batch."""
    return np.mean(((np.asarray(a) - np.asarray(b)) ** 2).reshape(len(a), -1).sum(axis=1))


def softmax_cross_entropy(logits, labels):
    """Mean of ``-log softmax(logits)[label]`` (log-sum-exp shifted by the row maximum)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(log_probs[np.arange(len(logits)), np.asarray(labels)])


def one_hot(groups, n=5):
    return np.eye(n)[np.asarray(groups)]


def release_losses(weights, source_128, source_227, real, target, false, age_groups=5):
    """Spec §2 for one batch, unweighted (the values the release logs): ``d_loss``, ``g_loss``
    (the adversarial term), ``age_loss`` and ``fea_loss_<layer>`` for every feature layer,
    all seen through the *same* D (the losses of the step before any update); plus the
    intermediate tensors, for comparison."""
    batch = len(source_128)
    t, f = one_hot([target] * batch, age_groups), one_hot([false] * batch, age_groups)
    fake = generator(weights, source_128, t)
    d1 = discriminator(weights, real, t)
    d2 = discriminator(weights, real, f)
    d3 = discriminator(weights, fake, t)
    fake_227 = generated_to_alexnet(fake)
    both = alexnet(weights, np.concatenate([fake_227, source_227]))  # no batch statistics here
    fake_out = {k: v[:batch] for k, v in both.items()}
    source_out = {k: v[batch:] for k, v in both.items()}
    losses = {"d_loss": lsgan_d_loss(d1, d2, d3), "g_loss": lsgan_g_loss(d3),
              "age_loss": softmax_cross_entropy(fake_out["age_logits"], [target] * batch)}
    for layer in FEATURE_LAYERS:
        losses[f"fea_loss_{layer}"] = msum(fake_out[layer], source_out[layer])
    tensors = {"fake": fake, "d_real_true": d1, "d_real_false": d2, "d_fake_true": d3,
               "fake_227": fake_227, "alexnet_fake": fake_out, "alexnet_source": source_out}
    return losses, tensors
