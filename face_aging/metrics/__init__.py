"""Evaluation metrics: a name -> function registry (after stylegan2-ada's ``metrics/``).

The math takes arrays (activations, probabilities, judge outputs) and never runs a
network, so it is tested against numpy/scipy; the networks live in ``features.py``
(FID/KID features) and ``judges.py`` (optional age and identity judges), the pipeline in
``evaluation.py`` and the output in ``report.py``.

===================  ====================================================  ==========
name                 function                                              module
===================  ====================================================  ==========
``fid``              ``fid_from_activations(acts1, acts2) -> float``       fid
``kid``              ``kid_from_activations(acts1, acts2, ...) -> dict``   kid
``inception_score``  ``inception_score(probabilities, splits) -> (m, s)``  inception_score
``age_table``        ``age_table(generated_ages, input_ages, real, bins)``  age_identity
``identity_table``   ``identity_table(inp, out, imp_a, imp_b, threshold)``  age_identity
``verification``     ``cross_validate(distances, same, folds) -> dict``    verification
===================  ====================================================  ==========
"""
from __future__ import annotations

from typing import Callable, Dict

from face_aging.metrics.age_identity import age_table, identity_table
from face_aging.metrics.fid import fid_from_activations
from face_aging.metrics.inception_score import inception_score
from face_aging.metrics.kid import kid_from_activations



def _verification(distances, same, folds):
    """``verification.cross_validate``, imported when called: that module is also a command
    (``python -m face_aging.metrics.verification``), which importing it here would shadow."""
    from face_aging.metrics.verification import cross_validate

    return cross_validate(distances, same, folds)


_REGISTRY: Dict[str, Callable] = {
    "fid": fid_from_activations,
    "kid": kid_from_activations,
    "inception_score": inception_score,
    "age_table": age_table,
    "identity_table": identity_table,
    "verification": _verification,
}


def register(name: str, fn: Callable) -> Callable:
    """Adds ``fn`` under ``name`` (an existing name raises ValueError)."""
    if name in _REGISTRY:
        raise ValueError(f"metric {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


def get(name: str) -> Callable:
    """The metric function registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def names():
    """Registered metric names, sorted."""
    return sorted(_REGISTRY)
