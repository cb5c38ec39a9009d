"""Writes ``release_reference.npz``: what the IPCGAN release's maths gives for one fixed tiny
batch, computed once with numpy from the specification (``release_numpy.py``, written from
IPCGAN_SPEC.md §1-§3), never with this project's code.

How the file was made (run from the repository root; it takes a few seconds):

    python tests/reference/make_release_reference.py

- Weights: every variable of the release's generator, discriminator and AlexNet (spec §6
  names, §1 shapes; the full widths, 512-channel PatchGAN, 2,000 identities, 5 age groups)
  drawn by :func:`release_weights` from ``numpy.random.RandomState(SEED)`` (the legacy
  generator, whose stream numpy keeps fixed across versions) as int8 levels scaled per layer,
  so that activations stay far from zero and from saturation (the release's 0.02 initialiser
  would leave the deep layers' values near zero, where many defects would not show). Batch
  norm gammas and betas and all biases are non-trivial. Only the seed is stored, and a digest
  of the weights, so a drift of the generator is reported as such.
- Inputs: two random uint8 RGB source faces and two real faces at 32x32 (G and D are fully
  convolutional; the release ran them at 128) with target group 3 and false group 1; the
  AlexNet source is the source face resized to 227 on TF1's grid, as the release's input
  pipeline did. They are stored (12 KB).
- Outputs: the generator's output (batch statistics, as the release), the three
  discriminator calls of spec §2 (every 32nd channel), AlexNet's features of the generated
  and the source faces (strided subsets), its identity and age logits, and the four losses
  of spec §2 (unweighted, as the release logs them; the feature loss for each of the six
  ``fea_layer_name`` choices), all through the same weights (before any update).

``tests/test_release_maths.py`` loads the file, regenerates the weights from the seed, puts
them into the port's models by their release names and compares everything to tolerance.
Re-running this script must reproduce the file (up to float rounding): do not re-run it to
make a failing port pass.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import release_numpy as ref  # noqa: E402

SEED = 20180618  # CVPR 2018's first day
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "release_reference.npz")
SIZE, BATCH, TARGET, FALSE = 32, 2, 3, 1

#: Strided subsets stored of the larger tensors: name -> index into the full array.
SUBSETS = {
    "d": (slice(None), slice(None), slice(None), slice(None, None, 32)),
    "conv": (slice(None), slice(None, None, 3), slice(None, None, 3), slice(None, None, 16)),
    "pool5": (slice(None), slice(None), slice(None), slice(None, None, 8)),
    "fc": (slice(None), slice(None, None, 64)),
    "identity_logits": (slice(None), slice(None, None, 40)),
    "age_logits": (slice(None), slice(None)),
}
FEATURE_SUBSET = {"conv3": "conv", "conv4": "conv", "conv5": "conv", "pool5": "pool5",
                  "fc6": "fc", "fc7": "fc", "identity_logits": "identity_logits",
                  "age_logits": "age_logits"}


def _levels(rng, shape, std):
    """Uniform int8 levels -127..127 scaled to standard deviation ``std`` (float32)."""
    levels = rng.randint(-127, 128, size=shape, dtype=np.int8).astype(np.float32)
    return levels * np.float32(std * np.sqrt(3.0) / 127.0)


def release_weights(seed: int = SEED) -> dict:
    """TF1 name -> float32 array for every trainable variable of the release (spec §1, §6)."""
    rng = np.random.RandomState(seed)
    weights = {}

    def conv(scope, shape, gain=1.0, fan_in=None, out_channels=None):
        fan_in = fan_in or int(np.prod(shape[:-1]))
        weights[f"{scope}/weights"] = _levels(rng, shape, gain / np.sqrt(fan_in))
        weights[f"{scope}/biases"] = _levels(rng, (out_channels or shape[-1],), 0.1)

    def bn(scope, channels):
        weights[f"{scope}/gamma"] = 1.0 + _levels(rng, (channels,), 0.25)
        weights[f"{scope}/beta"] = _levels(rng, (channels,), 0.25)

    g = "generator"
    conv(f"{g}/conv1", (7, 7, 8, 32)), bn(f"{g}/bn1", 32)
    conv(f"{g}/conv2", (3, 3, 32, 64)), bn(f"{g}/bn2", 64)
    conv(f"{g}/conv3", (3, 3, 64, 128)), bn(f"{g}/bn3", 128)
    for i in range(6):
        conv(f"{g}/unit_{i}/sub1/conv1", (3, 3, 128, 128)), bn(f"{g}/unit_{i}/sub1/bn1", 128)
        conv(f"{g}/unit_{i}/sub2/conv2", (3, 3, 128, 128)), bn(f"{g}/unit_{i}/sub2/bn2", 128)
    # transposed kernels [kh, kw, out, in]: an output pixel sums ~ kh*kw*in/4 products
    conv(f"{g}/deconv1", (3, 3, 64, 128), 2.0, 3 * 3 * 128, 64), bn(f"{g}/bn4", 64)
    conv(f"{g}/deconv2", (3, 3, 32, 64), 2.0, 3 * 3 * 64, 32), bn(f"{g}/bn5", 32)
    conv(f"{g}/conv4", (7, 7, 32, 3))

    d = "discriminator"
    conv(f"{d}/dis", (4, 4, 3, 64), 2.0)
    conv(f"{d}/dis_1", (4, 4, 69, 128), 2.0), bn(f"{d}/dis_bn0", 128)
    conv(f"{d}/dis_2", (4, 4, 128, 256), 2.0), bn(f"{d}/dis_bn1", 256)
    conv(f"{d}/dis_3", (4, 4, 256, 512), 2.0), bn(f"{d}/dis_bn2", 512)
    conv(f"{d}/dis_4", (4, 4, 512, 512))

    a, he = "alexnet", np.sqrt(2.0)
    conv(f"{a}/conv1", (11, 11, 3, 96), he)
    conv(f"{a}/conv2", (5, 5, 48, 256), he)
    conv(f"{a}/conv3", (3, 3, 256, 384), he)
    conv(f"{a}/conv4", (3, 3, 192, 384), he)
    conv(f"{a}/conv5", (3, 3, 192, 256), he)
    conv(f"{a}/fc6", (9216, 4096), he)
    conv(f"{a}/fc7", (4096, 4096), he)
    conv(f"{a}/new_1", (4096, 256), he)
    conv(f"{a}/new_2", (256, 2000), 0.05)
    conv(f"{a}/age_fc6", (9216, 4096), he)
    conv(f"{a}/age_fc7", (4096, 4096), he)
    conv(f"{a}/age_fc8", (4096, 5), 0.05)
    return weights


def weights_digest(weights: dict) -> str:
    """sha256 over the names and float32 bytes of ``weights``, in name order."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(weights[name], np.float32).tobytes())
    return digest.hexdigest()


def fixed_inputs(seed: int = SEED):
    """uint8 RGB ``source`` and ``real`` faces, [BATCH, SIZE, SIZE, 3]."""
    rng = np.random.RandomState(seed + 1)
    return {"source_uint8": rng.randint(0, 256, (BATCH, SIZE, SIZE, 3)).astype(np.uint8),
            "real_uint8": rng.randint(0, 256, (BATCH, SIZE, SIZE, 3)).astype(np.uint8)}


def release_batch(inputs):
    """The batch of spec §2/§3 from the stored uint8 faces (float64)."""
    source = inputs["source_uint8"].astype(np.float64)
    return {"source_128": source - ref.MEAN,
            "source_227": ref.resize_bilinear_tf1(source, ref.ALEXNET_SIZE, ref.ALEXNET_SIZE)
            - ref.MEAN,
            "real": inputs["real_uint8"].astype(np.float64) / 127.5 - 1.0}


def compute(weights, inputs):
    """The arrays stored in the file (without the inputs and metadata)."""
    batch = release_batch(inputs)
    losses, t = ref.release_losses(weights, batch["source_128"], batch["source_227"],
                                   batch["real"], TARGET, FALSE)
    out = {"generator_output": t["fake"]}
    for name in ("d_real_true", "d_real_false", "d_fake_true"):
        out[name] = t[name][SUBSETS["d"]]
    for which in ("fake", "source"):
        for feature, subset in FEATURE_SUBSET.items():
            out[f"alexnet_{which}_{feature}"] = t[f"alexnet_{which}"][feature][SUBSETS[subset]]
    out.update({f"loss_{k}": np.float64(v) for k, v in losses.items()})
    return out


def main():
    weights = release_weights(SEED)
    inputs = fixed_inputs(SEED)
    arrays = {k: (v.astype(np.float32) if v.ndim else v) for k, v in compute(weights, inputs).items()}
    meta = {"seed": SEED, "weights_sha256": weights_digest(weights), "size": SIZE,
            "batch": BATCH, "target_group": TARGET, "false_group": FALSE,
            "made_by": "tests/reference/make_release_reference.py (numpy, from the spec)"}
    np.savez_compressed(PATH, meta=json.dumps(meta), **inputs, **arrays)
    print(f"wrote {PATH} ({os.path.getsize(PATH) / 1024:.0f} KB)")
    for name, value in arrays.items():
        if name.startswith("loss_"):
            print(f"  {name} = {float(value):.6g}")


if __name__ == "__main__":
    main()
