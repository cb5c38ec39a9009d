"""Every exception that means bad input, a bad option or a missing optional package derives from
face_aging.errors.FaceAgingError (what the commands catch) and keeps the built-in base its
callers catch."""
import importlib
import pickle

import pytest

from face_aging.errors import FaceAgingError

CLASSES = [
    ("face_aging.images", "BadImageError", ValueError),
    ("face_aging.faces", "FaceDetectionUnavailable", RuntimeError),
    ("face_aging.faces", "FaceDetectionUnavailable", ImportError),
    ("face_aging.video", "BadVideoError", ValueError),
    ("face_aging.demo", "DemoError", ValueError),
    ("face_aging.onnx_export", "OnnxUnavailable", RuntimeError),
    ("face_aging.data.lists", "ListFormatError", ValueError),
    ("face_aging.data.sources", "SourceError", Exception),
    ("face_aging.data.build", "PrepareError", Exception),
    ("face_aging.data.build", "ImageProblem", Exception),
    ("face_aging.cyclegan.config", "DataError", ValueError),
    ("face_aging.cyclegan.inference", "CycleGANLoadError", ValueError),
    ("face_aging.metrics.evaluation", "EvaluationInputError", ValueError),
    ("face_aging.metrics.verification", "VerificationInputError", ValueError),
    ("face_aging.metrics.judges", "JudgesUnavailableError", ImportError),
    ("face_aging.metrics.features", "FeatureError", ValueError),
    ("face_aging.metrics.run", "UsageError", ValueError),
    ("face_aging.alexnet.formats", "PretrainedFormatError", ValueError),
    ("face_aging.alexnet.formats", "UnsafePickleError", pickle.UnpicklingError),
    ("face_aging.alexnet.config", "PretrainError", ValueError),
    ("face_aging.engine.setup", "TrainingSetupError", ValueError),
    ("face_aging.engine.nonfinite", "NonFiniteLossError", RuntimeError),
]


@pytest.mark.parametrize("module, name, builtin", CLASSES)
def test_exception_derives_from_the_base_and_keeps_its_builtin(module, name, builtin):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, FaceAgingError) and issubclass(cls, builtin), cls.__mro__
