"""Pretrained AlexNet weights from outside this project, imported safely.

Two outside formats give this project's AlexNet (``face_aging.backbones.alexnet.AlexNet``) its
weights:

- the release's TF1 checkpoints (``alexnet.model-292000``, ``age_classifier.model-300000``):
  ``face_aging.backbones.alexnet.load_alexnet_layers`` reads them (``python -m
  face_aging.checkpoints`` converts them);
- the classic ImageNet AlexNet ``bvlc_alexnet.npy`` (Caffe's BVLC model as converted for
  TensorFlow): a pickled dict ``layer -> [weights, biases]`` inside an ``.npy`` file, with
  conv2/4/5 in the two-group shape (e.g. conv2 ``(5, 5, 48, 256)``) and fc6 rows in the
  NHWC flatten order of pool5 -- exactly this port's layouts. This module reads it.

A pickle can run any code while it loads (``os.system`` is one ``GLOBAL`` opcode away), so
``bvlc_alexnet.npy`` is read with :class:`SafeUnpickler`, which admits only dicts, lists,
tuples, strings, numbers and numpy arrays (the globals numpy needs to rebuild an array:
``_reconstruct``, ``ndarray``, ``dtype``, ``scalar``) and refuses every other global by name,
before anything is called.

CLI (``face_aging.apps.pretrained_formats``): ``python -m face_aging.pretrained_formats
--bvlc_npy=bvlc_alexnet.npy --output_dir=DIR`` writes ``DIR/alexnet-0``, a TF2 checkpoint
(``save_alexnet``) holding conv1..conv5, fc6 and fc7 from the file (fc8, ImageNet's 1000-way
head, is not used); the identity and age heads keep their fresh initialisation.
"""
from __future__ import annotations

import os
import pickle
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from face_aging.errors import FaceAgingError, InputError

#: Layers ``bvlc_alexnet.npy`` gives this AlexNet, with their kernel shapes (biases: last dim).
BVLC_LAYERS: Dict[str, Tuple[int, ...]] = {
    "conv1": (11, 11, 3, 96),
    "conv2": (5, 5, 48, 256),
    "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384),
    "conv5": (3, 3, 192, 256),
    "fc6": (9216, 4096),
    "fc7": (4096, 4096),
}
#: Present in the file, not used: ImageNet's 1000-way classifier.
BVLC_UNUSED = ("fc8",)

#: (module, name) globals a numpy-array pickle needs, and nothing else.
_ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
})


class UnsafePickleError(FaceAgingError, pickle.UnpicklingError):
    """A pickle names a global outside the allowed set (the message names it)."""


class PretrainedFormatError(InputError):
    """A weights file is missing, unreadable, or not the expected structure (one line)."""


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that builds only containers, scalars and numpy arrays.

    Dicts, lists, tuples, strings, bytes and numbers come from pickle opcodes, never from
    globals; numpy arrays need ``_reconstruct``, ``ndarray``, ``dtype`` (and ``scalar`` for
    numpy scalars). Any other global -- a function, a class, ``os.system``,
    ``builtins.eval`` -- raises :class:`UnsafePickleError` naming it, before anything runs.
    Persistent ids are refused too.
    """

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to load the global {module}.{name}: this file may only hold a dict "
                "of numpy arrays (allowed: numpy _reconstruct, ndarray, dtype, scalar)")
        if name == "ndarray":
            return np.ndarray
        if name == "dtype":
            return np.dtype
        return getattr(_numpy_multiarray(), name)

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing a persistent id {pid!r}: not a plain weights file")


def safe_load_pickle(stream, encoding: str = "latin1"):
    """Unpickles a stream with :class:`SafeUnpickler` (``latin1`` reads Python 2 pickles)."""
    return SafeUnpickler(stream, encoding=encoding).load()


def safe_load_npy(path: str):
    """Loads an ``.npy`` file (plain or pickled object array) or a bare pickle, safely.

    An ``.npy`` holding Python objects is an ``.npy`` header followed by a pickle stream of
    the object array; ``bvlc_alexnet.npy`` is such a 0-d array wrapping a dict. A plain
    (non-object) ``.npy`` is read without pickle at all. A file without the ``.npy`` magic is
    read as a bare pickle stream.

    Returns:
      the stored object: the dict for ``bvlc_alexnet.npy`` (a 0-d object array is unwrapped).
    Raises:
      PretrainedFormatError: missing or unreadable file; UnsafePickleError: a forbidden global.
    """
    if not os.path.isfile(path):
        raise PretrainedFormatError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(len(np.lib.format.MAGIC_PREFIX))
        f.seek(0)
        try:
            if magic == np.lib.format.MAGIC_PREFIX:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise PretrainedFormatError(f"{path}: unsupported .npy version {version}")
                if not dtype.hasobject:
                    f.seek(0)
                    return np.load(f, allow_pickle=False)
                value = safe_load_pickle(f)
            else:
                value = safe_load_pickle(f)
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from None
        except PretrainedFormatError:
            raise
        except Exception as e:  # truncated/corrupt streams raise many kinds
            raise PretrainedFormatError(
                f"{path}: not a readable .npy/pickle file ({type(e).__name__}: {e})") from None
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.shape == ():
        value = value.item()
    return value


def read_bvlc_alexnet(path: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Reads ``bvlc_alexnet.npy`` safely and checks every used layer's shapes.

    Each layer may be stored as ``[weights, biases]`` (the usual file) or as a dict with
    ``weights``/``biases`` keys.

    Returns:
      ``{layer: (kernel float32, bias float32)}`` for ``BVLC_LAYERS`` (fc8 dropped).
    Raises:
      PretrainedFormatError: not a dict, a layer missing or mis-shaped (all listed in one line).
    """
    raw = safe_load_npy(path)
    if not isinstance(raw, dict):
        raise PretrainedFormatError(f"{path}: expected a dict layer -> [weights, biases], "
                                    f"got {type(raw).__name__}")
    raw = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    layers, problems = {}, []
    for name, kernel_shape in BVLC_LAYERS.items():
        if name not in raw:
            problems.append(f"missing {name}")
            continue
        entry = raw[name]
        if isinstance(entry, dict):
            entry = [entry.get("weights"), entry.get("biases")]
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or \
                not all(isinstance(x, np.ndarray) for x in entry):
            problems.append(f"{name} is not [weights, biases] arrays")
            continue
        kernel, bias = entry
        if tuple(kernel.shape) != kernel_shape or tuple(bias.shape) != kernel_shape[-1:]:
            problems.append(f"{name} weights {tuple(kernel.shape)} biases {tuple(bias.shape)} "
                            f"(expected {kernel_shape} and {kernel_shape[-1:]})")
            continue
        layers[name] = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
    if problems:
        raise PretrainedFormatError(f"{path}: not a bvlc_alexnet.npy: " + "; ".join(problems))
    return layers


def load_bvlc_alexnet(path: str, alexnet, layers: Iterable[str] = tuple(BVLC_LAYERS),
                      conv1_rgb: bool = False):
    """Assigns ``bvlc_alexnet.npy`` weights into a built ``AlexNet``.

    Args:
      path: the ``.npy`` file.
      alexnet: a built ``face_aging.backbones.alexnet.AlexNet``.
      layers: which of ``BVLC_LAYERS`` to take (default all: conv1..conv5, fc6, fc7).
      conv1_rgb: the file's conv1 expects BGR input (Caffe). False (default) assigns it as
        stored -- what the release did, feeding RGB minus Caffe's BGR means (spec §3). True
        reverses conv1's input channels, so RGB input sees the filters as ImageNet trained them.
    Returns:
      the layer names assigned.
    """
    stored = read_bvlc_alexnet(path)
    names = list(layers)
    unknown = [n for n in names if n not in BVLC_LAYERS]
    if unknown:
        raise PretrainedFormatError(f"bvlc_alexnet.npy has no layer(s) {unknown}; "
                                    f"choose from {list(BVLC_LAYERS)}")
    for name in names:
        kernel, bias = stored[name]
        if name == "conv1" and conv1_rgb:
            kernel = kernel[:, :, ::-1, :]
        layer = getattr(alexnet, name)
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    return names


def write_alexnet_checkpoint(alexnet, output_dir: str, step: int = 0) -> str:
    """Writes ``output_dir/alexnet-STEP`` (``save_alexnet``) through a temporary folder.

    The files appear under their final names only once complete; an older ``alexnet-*``
    in ``output_dir`` is replaced. Returns the checkpoint prefix (what
    ``--alexnet_pretrained_model`` / ``--age_pretrained_model`` take; ``output_dir`` works too).
    """
    from face_aging.backbones.alexnet import save_alexnet

    from face_aging.files import atomic_files_into

    old = [f for f in os.listdir(output_dir)
           if f.startswith("alexnet-")] if os.path.isdir(output_dir) else []
    with atomic_files_into(output_dir) as staging:
        save_alexnet(alexnet, os.path.join(staging, f"alexnet-{step}"))
    for name in old:
        if not name.startswith(f"alexnet-{step}."):
            os.remove(os.path.join(output_dir, name))
    return os.path.join(output_dir, f"alexnet-{step}")


def convert_bvlc_alexnet(npy_path: str, output_dir: str, age_groups: int = 5,
                         conv1_rgb: bool = False, seed: Optional[int] = 0) -> str:
    """``bvlc_alexnet.npy`` -> TF2 checkpoint ``output_dir/alexnet-0``; returns its prefix."""
    read_bvlc_alexnet(npy_path)  # fail on a bad file before importing TF or building anything
    import keras

    from face_aging.backbones.alexnet import AlexNet, build_alexnet

    if seed is not None:
        keras.utils.set_random_seed(seed)
    alexnet = AlexNet(age_groups=age_groups)
    build_alexnet(alexnet)
    load_bvlc_alexnet(npy_path, alexnet, conv1_rgb=conv1_rgb)
    return write_alexnet_checkpoint(alexnet, output_dir, 0)
