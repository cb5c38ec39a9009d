"""Evaluation metrics (the layout after stylegan2-ada's ``metrics/``).

The math takes arrays (activations, probabilities, judge outputs) and never runs a
network, so it is tested against numpy/scipy; the networks live in ``features.py``
(FID/KID features) and ``judges.py`` (optional age and identity judges), the pipeline in
``evaluation.py`` (which calls the functions below directly) and the output in ``report.py``.

=====================  ====================================================  ===============
metric                 function                                              module
=====================  ====================================================  ===============
FID                    ``fid_from_activations(acts1, acts2) -> float``       fid
KID                    ``kid_from_activations(acts1, acts2, ...) -> dict``   kid
Inception Score        ``inception_score(probabilities, splits) -> (m, s)``  inception_score
age table              ``age_table(generated_ages, input_ages, real, bins)``  age_identity
identity table         ``identity_table(inp, out, imp_a, imp_b, threshold)``  age_identity
verification           ``cross_validate(distances, same, folds) -> dict``    verification
checkerboard score     ``checkerboard_scores(images) -> dict``               checkerboard
=====================  ====================================================  ===============

(There is no name -> function registry: nothing chose metrics by name, so the evaluation
imports them.)
"""
