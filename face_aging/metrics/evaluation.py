"""The evaluation pipeline: age every test face to every group, judge, and measure.

Library code: takes paths, arrays and callables, never flags (``evaluate.py`` turns flags
into these arguments). The generator enters as ``age_fn(faces, group)``: uint8 RGB
``[B, 128, 128, 3]`` faces and one target group -> uint8 RGB ``[B, 128, 128, 3]`` aged
faces, so this module does not care how the model was built or loaded.

Faces are read as the release's test script read them (spec §3): decoded to RGB and
resized with ``cv2.resize(INTER_LINEAR)`` to 128x128 uint8. Real reference faces go
through the same resize, so FID/KID compare images of one resolution.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

from face_aging import images
from face_aging.data import lists
from face_aging.metrics import age_identity as ai
from face_aging.metrics import checkerboard as cb
from face_aging.metrics.fid import fid_from_activations
from face_aging.metrics.inception_score import inception_score
from face_aging.metrics.kid import kid_from_activations
from face_aging.errors import InputError

IMAGE_SIZE = 128


class EvaluationInputError(InputError):
    """Missing list file, unreadable image, empty split... (one-line message)."""


@dataclass
class FaceSet:
    """Faces with where they came from: ``faces`` uint8 RGB ``[N, 128, 128, 3]``."""
    paths: List[str]
    labels: np.ndarray
    faces: np.ndarray = field(repr=False)

    def __len__(self):
        return len(self.paths)


def _cap_per_group(entries, groups: int, cap: Optional[int], where: str):
    kept, counts = [], [0] * groups
    for path, label in entries:
        if not 0 <= label < groups:
            raise EvaluationInputError(f"{where}: label {label} of {path!r} is not in 0..{groups - 1}")
        if cap is None or counts[label] < cap:
            kept.append((path, label))
            counts[label] += 1
    return kept


def read_split(list_dir: str, groups: int, max_faces_per_group: Optional[int] = None):
    """Reads ``test.txt`` (the faces to age) and ``test_age_group_k.txt`` (real faces per group).

    Keeps the first ``max_faces_per_group`` lines of each group (inputs are capped per
    source group). Returns ``(input_entries, [real_entries_k for k])`` of
    ``(relative_path, label)``.
    """
    try:
        inputs = lists.read_image_list(os.path.join(list_dir, lists.TEST_LIST))
        real = [lists.read_image_list(os.path.join(list_dir, lists.age_group_list("test", k)))
                for k in range(groups)]
    except lists.ListFormatError as e:
        raise EvaluationInputError(str(e)) from None
    inputs = _cap_per_group(inputs, groups, max_faces_per_group, lists.TEST_LIST)
    if not inputs:
        raise EvaluationInputError(f"{os.path.join(list_dir, lists.TEST_LIST)}: no faces")
    real = [[(p, k) for p, _ in entries][:max_faces_per_group] for k, entries in enumerate(real)]
    return inputs, real


def read_face(path: str, size: Optional[int] = IMAGE_SIZE) -> np.ndarray:
    """One image file (``images.read_image``) -> uint8 RGB ``[size, size, 3]`` via
    ``cv2.resize(INTER_LINEAR)`` (``size=None``: as stored)."""
    if not os.path.isfile(path):
        raise EvaluationInputError(f"{path}: image not found")
    try:
        image, _ = images.read_image(path, min_side=1)
    except images.BadImageError as e:
        raise EvaluationInputError(f"{path}: not a readable image ({e.reason})") from None
    if size is not None and image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    return image


def load_faces(root_folder: str, entries: Sequence, size: int = IMAGE_SIZE,
               resize: Optional[Callable[[np.ndarray, int], np.ndarray]] = None) -> FaceSet:
    """Reads ``(relative_path, label)`` entries below ``root_folder`` into a :class:`FaceSet`.

    ``resize``: instead of :func:`read_face`'s ``cv2.resize``, ``resize(face uint8 [H, W, 3]
    as stored, size) -> uint8 [size, size, 3]`` (a model's own resize, e.g. CycleGAN's).
    """
    if resize is None:
        faces = [read_face(os.path.join(root_folder, p), size) for p, _ in entries]
    else:
        faces = [resize(read_face(os.path.join(root_folder, p), None), size) for p, _ in entries]
    return FaceSet([p for p, _ in entries], np.asarray([l for _, l in entries], np.int64),
                   np.stack(faces) if faces else np.zeros((0, size, size, 3), np.uint8))


def generate_all(age_fn: Callable[[np.ndarray, int], np.ndarray], faces: np.ndarray, groups: int,
                 batch_size: int = 32) -> np.ndarray:
    """Every face aged to every group: uint8 ``[N, G, H, W, 3]``."""
    out = np.zeros((len(faces), groups) + faces.shape[1:], np.uint8)
    for g in range(groups):
        for start in range(0, len(faces), batch_size):
            batch = faces[start:start + batch_size]
            aged = np.asarray(age_fn(batch, g))
            if aged.dtype != np.uint8 or aged.shape != batch.shape:
                raise ValueError(f"age_fn returned {aged.dtype} {aged.shape}, "
                                 f"expected uint8 {batch.shape}")
            out[start:start + len(batch), g] = aged
    return out


def checkerboard_table(inputs: np.ndarray, outputs_by_group: Sequence[np.ndarray],
                       names: Sequence[str]) -> Dict:
    """The checkerboard score (``checkerboard.py``) of the inputs and of each group's outputs;
    ``None`` figures when the side is not a multiple of the longest period."""
    side = int(inputs.shape[1]) if inputs.ndim >= 3 else 0
    if not len(inputs) or side % max(cb.PERIODS):
        blank = dict.fromkeys(cb.score_names())
        return {"inputs": blank, "groups": [dict(group=g, name=n, **blank)
                                            for g, n in enumerate(names)],
                "note": f"not computed: no faces or a side ({side} px) not a multiple of "
                        f"{max(cb.PERIODS)}"}
    return {"inputs": cb.checkerboard_scores(inputs),
            "groups": [dict(group=g, name=n, **cb.checkerboard_scores(out))
                       for g, (out, n) in enumerate(zip(outputs_by_group, names))],
            "note": ("share of the grey image's non-DC spectral power at the frequencies of "
                     "period 2 and 4 px (the transposed convolutions' grid), per 10,000, mean "
                     "over faces, in all and split into horizontal lines, vertical lines and "
                     "the diagonal; outputs well above the inputs carry a pattern: a grid has a "
                     "diagonal part, streaks only a horizontal or vertical one")}


def _realism_pair(gen_acts, real_acts, kid_subsets, kid_subset_size) -> Dict:
    entry = {"n_generated": int(len(gen_acts)), "n_real": int(len(real_acts)),
             "fid": None, "kid": None, "kid_std": None}
    if len(gen_acts) < 2 or len(real_acts) < 2:
        entry["note"] = "fewer than 2 faces on a side: not computed"
        return entry
    entry["fid"] = fid_from_activations(gen_acts, real_acts)
    if min(len(gen_acts), len(real_acts)) <= gen_acts.shape[1]:
        entry["note"] = (f"fewer samples than feature dimensions ({gen_acts.shape[1]}): "
                         "singular covariance, FID strongly biased; read KID")
    kid = kid_from_activations(gen_acts, real_acts, num_subsets=kid_subsets,
                               max_subset_size=kid_subset_size)
    entry.update(kid=kid["kid"], kid_std=kid["kid_std"], kid_subsets=kid["num_subsets"],
                 kid_subset_size=[kid["subset_size_1"], kid["subset_size_2"]])
    return entry


@contextlib.contextmanager
def _timed(timings: Dict[str, float], key: str):
    """Adds the seconds the block took to ``timings[key]``."""
    start = time.time()
    yield
    timings[key] = time.time() - start


def run_evaluation(age_fn, inputs: FaceSet, real_by_group: Sequence[FaceSet], *, age_judge,
                   identity_judge, features, bins: Sequence[float] = ai.DEFAULT_AGE_BINS,
                   batch_size: int = 32, max_impostor_pairs: int = 5000, kid_subsets: int = 100,
                   kid_subset_size: int = 1000, inception_score_splits: int = 10,
                   log: Callable[[str], None] = print):
    """Runs the whole evaluation.

    Args:
      age_fn: ``(uint8 [B,128,128,3], group) -> uint8 [B,128,128,3]``.
      inputs: the test faces to age.
      real_by_group: real test faces of each group (age ceiling, FID/KID reference).
      age_judge: ``.estimate(faces) -> years [N]`` (``judges.AgeJudge``).
      identity_judge: ``.embed(faces) -> [N, D]`` and ``.THRESHOLD`` (``judges.IdentityJudge``).
      features: ``features.InceptionFeatures`` / ``AlexNetFeatures`` (``.features_and_probabilities``).
      bins: age-group bounds in years; ``len(bins) + 1`` groups.
    Returns:
      ``(results, arrays)``: ``results`` is JSON-ready (every figure and count),
      ``arrays`` holds ``generated`` ``[N, G, 128, 128, 3]`` and per-face judge outputs
      for plots.
    """
    groups = len(bins) + 1
    if len(real_by_group) != groups:
        raise ValueError(f"{len(real_by_group)} real-face sets for {groups} groups")
    timings = {}
    with _timed(timings, "generate"):
        log(f"generating {len(inputs)} faces x {groups} groups")
        generated = generate_all(age_fn, inputs.faces, groups, batch_size)
    flat = generated.reshape((-1,) + generated.shape[2:])  # row i * G + g
    with _timed(timings, "age_judge"):
        log("age judge")
        input_ages = age_judge.estimate(inputs.faces)
        generated_ages = age_judge.estimate(flat).reshape(len(inputs), groups)
        real_ages = [age_judge.estimate(r.faces) if len(r) else np.zeros(0)
                     for r in real_by_group]
        age_rows = ai.age_table(generated_ages, input_ages, real_ages, bins)
    with _timed(timings, "identity_judge"):
        log("identity judge")
        input_emb = identity_judge.embed(inputs.faces)
        output_emb = identity_judge.embed(flat).reshape(len(inputs), groups, -1)
        pairs = ai.impostor_pairs(len(inputs), max_impostor_pairs)
        identity = ai.identity_table(input_emb, output_emb, input_emb[pairs[:, 0]],
                                     input_emb[pairs[:, 1]], identity_judge.THRESHOLD, bins)
        identity["impostor_source"] = ("pairs of different input faces, assumed to be "
                                       "different people (the lists carry no identities)")
    with _timed(timings, "realism"):
        log(f"realism features ({features.name})")
        realism, gen_probs = _realism_by_group(features, inputs, flat, real_by_group, bins,
                                               kid_subsets, kid_subset_size)
        is_result = _inception_score(gen_probs, inception_score_splits)
    results = {
        "settings": {"age_bins": [float(b) for b in bins], "groups": ai.group_names(bins),
                     "batch_size": batch_size, "image_size": int(inputs.faces.shape[1]),
                     "max_impostor_pairs": max_impostor_pairs},
        "counts": {"inputs": len(inputs),
                   "inputs_per_source_group": np.bincount(inputs.labels, minlength=groups).tolist(),
                   "generated": int(len(flat)),
                   "real_per_group": [len(r) for r in real_by_group]},
        "judges": {"age": age_judge.describe(), "identity": identity_judge.describe()},
        "age": {"groups": age_rows,
                "note": ("in_group: share of outputs the judge puts in the target group; "
                         "real_in_group: the same for real test faces of the group (the judge's "
                         "ceiling)")},
        "identity": identity,
        "realism": realism,
        "inception_score": is_result,
        "checkerboard": checkerboard_table(inputs.faces, generated.swapaxes(0, 1),
                                           ai.group_names(bins)),
        "runtime_seconds": {k: round(v, 2) for k, v in timings.items()},
        "faces": [{"path": p, "source_group": int(l), "input_age": float(input_ages[i]),
                   "output_ages": [float(a) for a in generated_ages[i]],
                   "identity_distances": [float(np.linalg.norm(output_emb[i, g] - input_emb[i]))
                                          for g in range(groups)]}
                  for i, (p, l) in enumerate(zip(inputs.paths, inputs.labels))],
    }
    arrays = {"generated": generated, "inputs": inputs.faces, "input_ages": input_ages,
              "generated_ages": generated_ages, "real_ages": real_ages,
              "identity_distances": np.linalg.norm(output_emb - input_emb[:, None], axis=-1),
              "impostor_distances": np.linalg.norm(input_emb[pairs[:, 0]] - input_emb[pairs[:, 1]],
                                                   axis=-1)}
    return results, arrays


def _realism_by_group(features, inputs: FaceSet, flat: np.ndarray,
                      real_by_group: Sequence[FaceSet], bins: Sequence[float], kid_subsets: int,
                      kid_subset_size: int):
    """``(realism section, generated faces' class probabilities or None)``: FID/KID of the
    outputs aimed at each group (and pooled) against that group's real faces, next to the
    unaltered inputs' (the floor)."""
    groups = len(bins) + 1
    input_acts, _ = features.features_and_probabilities(inputs.faces)
    gen_acts, gen_probs = features.features_and_probabilities(flat)
    gen_acts = gen_acts.reshape(len(inputs), groups, -1)
    real_acts = [features.features_and_probabilities(r.faces)[0] if len(r) else None
                 for r in real_by_group]
    names = ai.group_names(bins)
    per_group = []
    for g in range(groups):
        ref = real_acts[g] if real_acts[g] is not None else np.zeros((0, gen_acts.shape[-1]))
        entry = {"group": g, "name": names[g],
                 **_realism_pair(gen_acts[:, g], ref, kid_subsets, kid_subset_size)}
        base = _realism_pair(input_acts, ref, kid_subsets, kid_subset_size)
        entry["inputs_vs_real"] = {k: base[k] for k in ("fid", "kid", "kid_std", "n_generated")}
        per_group.append(entry)
    real_all = np.concatenate([a for a in real_acts if a is not None]) if any(
        a is not None for a in real_acts) else np.zeros((0, gen_acts.shape[-1]))
    pooled = _realism_pair(gen_acts.reshape(-1, gen_acts.shape[-1]), real_all, kid_subsets,
                           kid_subset_size)
    base = _realism_pair(input_acts, real_all, kid_subsets, kid_subset_size)
    pooled["inputs_vs_real"] = {k: base[k] for k in ("fid", "kid", "kid_std", "n_generated")}
    feature_info = features.describe()
    return {"features": feature_info, "per_group": per_group, "pooled": pooled,
            "comparable_to_published_fid": bool(feature_info["comparable_to_published_fid"]),
            "note": ("FID is biased upwards at small sample counts (compare only equal "
                     "counts); KID is unbiased. 'inputs_vs_real' is the same measure for the "
                     "unaltered input faces: the floor a generator is measured against.")}, \
        gen_probs


def _inception_score(gen_probs: Optional[np.ndarray], splits: int) -> Dict:
    if gen_probs is None:
        return {"mean": None, "note": "not computed: needs InceptionV3 weights with the top"}
    mean, std = inception_score(gen_probs, splits)
    return {"mean": mean, "std": std, "splits": min(splits, len(gen_probs)),
            "n": int(len(gen_probs)),
            "note": ("as the seed reported it (InceptionV3 ImageNet softmax, 299x299, "
                     "all generated faces): near 1 for any face set, says little")}


# --------------------------------------------------------------------------- young -> old
# (evaluate.py --model=cyclegan): one translation per input instead of one per group.

#: The prepared layout's per-face ages (``face_aging.data.prepare``; datasets with ages).
TEST_AGE_LIST = "test_age.txt"


def young_old_groups(bins: Sequence[float], young_max_age: float, old_min_age: float):
    """Age groups (of ``bins``, as :func:`ai.age_to_group`) wholly young and wholly old:
    group k holds whole ages ``floor(bins[k-1]) + 1 .. bins[k]``; young groups end at or below
    ``young_max_age``, old groups start at or above ``old_min_age``. Returns two lists."""
    bins = [float(b) for b in bins]
    young = [k for k, hi in enumerate(bins) if hi <= young_max_age]
    old = [k for k in range(1, len(bins) + 1) if np.floor(bins[k - 1]) + 1 >= old_min_age]
    return young, old


def read_young_old_split(list_dir: str, young_max_age: float, old_min_age: float,
                         bins: Sequence[float] = ai.DEFAULT_AGE_BINS,
                         max_faces: Optional[int] = None):
    """The young test faces (the inputs) and the real old ones (the realism reference).

    From ``test_age.txt`` (``relative/path age``) when the prepared split has one: ages
    ``<= young_max_age`` are young, ``>= old_min_age`` old. Otherwise from ``test.txt``'s
    groups (:func:`young_old_groups`). Keeps the first ``max_faces`` of each.

    Returns:
      ``(young_entries, old_entries, description)``; entries are ``(relative_path, label)``,
      the label an age (``test_age.txt``) or a group (``test.txt``).
    Raises:
      EvaluationInputError: a missing or malformed list, or no face on a side (one line).
    """
    if young_max_age >= old_min_age:
        raise EvaluationInputError(f"young_max_age {young_max_age:g} must be below "
                                   f"old_min_age {old_min_age:g}")
    ages_path = os.path.join(list_dir, TEST_AGE_LIST)
    try:
        if os.path.isfile(ages_path):
            entries = lists.read_image_list(ages_path)
            young = [(p, a) for p, a in entries if a <= young_max_age]
            old = [(p, a) for p, a in entries if a >= old_min_age]
            where = f"{ages_path}: ages <= {young_max_age:g} young, >= {old_min_age:g} old"
        else:
            entries = lists.read_image_list(os.path.join(list_dir, lists.TEST_LIST))
            young_groups, old_groups = young_old_groups(bins, young_max_age, old_min_age)
            names = ai.group_names(bins)
            young = [(p, g) for p, g in entries if g in young_groups]
            old = [(p, g) for p, g in entries if g in old_groups]
            where = (f"{os.path.join(list_dir, lists.TEST_LIST)} (no {TEST_AGE_LIST}): groups "
                     f"{', '.join(names[g] for g in young_groups) or 'none'} young, "
                     f"{', '.join(names[g] for g in old_groups) or 'none'} old")
    except lists.ListFormatError as e:
        raise EvaluationInputError(str(e)) from None
    for side, chosen in (("young", young), ("old", old)):
        if not chosen:
            raise EvaluationInputError(f"{where}: no {side} faces")
    return young[:max_faces], old[:max_faces], where


def translation_age_summary(input_ages: np.ndarray, output_ages: np.ndarray,
                            real_old_ages: np.ndarray, old_min_age: float) -> Dict:
    """The age judge's view of a young -> old translation (pure numpy).

    ``mean_shift`` = mean(output - input) = ``output_mean_age - input_mean_age`` (positive =
    the outputs look older); ``old_share``: share judged ``>= old_min_age``, next to the same
    for real old faces (the judge's ceiling).
    """
    inp = np.asarray(input_ages, np.float64)
    out = np.asarray(output_ages, np.float64)
    real = np.asarray(real_old_ages, np.float64)
    if inp.shape != out.shape or inp.ndim != 1:
        raise ValueError(f"input and output ages must be [N], got {inp.shape} and {out.shape}")
    shift = out - inp
    share = lambda a: float(np.mean(a >= old_min_age)) if a.size else None
    return {
        "n": int(inp.size),
        "input_mean_age": ai.stats(inp)["mean"], "input_std_age": ai.stats(inp)["std"],
        "output_mean_age": ai.stats(out)["mean"], "output_std_age": ai.stats(out)["std"],
        "mean_shift": ai.stats(shift)["mean"], "std_shift": ai.stats(shift)["std"],
        "share_older": float(np.mean(shift > 0)) if shift.size else None,
        "input_old_share": share(inp), "output_old_share": share(out),
        "real_old_n": int(real.size), "real_old_mean_age": ai.stats(real)["mean"],
        "real_old_std_age": ai.stats(real)["std"], "real_old_share": share(real),
        "old_min_age": float(old_min_age),
        "note": ("mean_shift = mean over faces of (judged output age - judged input age), "
                 "positive when the outputs look older; old_share: share judged >= "
                 "old_min_age, real_old_share the same for real old faces (the judge's "
                 "ceiling)"),
    }


def run_translation_evaluation(translate_fn, inputs: FaceSet, real_old: FaceSet, *, age_judge,
                               identity_judge, features, old_min_age: float = 50.0,
                               batch_size: int = 32, max_impostor_pairs: int = 5000,
                               kid_subsets: int = 100, kid_subset_size: int = 1000,
                               direction: str = "young_to_old",
                               log: Callable[[str], None] = print):
    """Evaluates a one-way translation (CycleGAN young -> old) with the IPCGAN judges.

    Args:
      translate_fn: uint8 ``[B, S, S, 3]`` -> uint8 ``[B, S, S, 3]`` (the model's faces).
      inputs: the young faces to translate; ``real_old``: real old faces (KID/FID reference
        and the age judge's ceiling).
      age_judge, identity_judge, features: as :func:`run_evaluation`.
    Returns:
      ``(results, arrays)`` for ``report.write_translation_report``: the judged ages of
      inputs and outputs and their shift, the identity verification rate input vs output
      at ``identity_judge.THRESHOLD`` (the IPCGAN report's) next to impostor pairs of
      different inputs, KID/FID of the outputs and of the unaltered inputs against the real
      old faces, and every per-face number.
    """
    if not len(inputs):
        raise EvaluationInputError("no input faces")
    timings = {}
    with _timed(timings, "generate"):
        log(f"translating {len(inputs)} faces ({direction})")
        generated = generate_all(lambda faces, _: translate_fn(faces), inputs.faces, 1,
                                 batch_size)[:, 0]
    with _timed(timings, "age_judge"):
        log("age judge")
        input_ages = age_judge.estimate(inputs.faces)
        output_ages = age_judge.estimate(generated)
        real_old_ages = age_judge.estimate(real_old.faces) if len(real_old) else np.zeros(0)
        age = translation_age_summary(input_ages, output_ages, real_old_ages, old_min_age)
    with _timed(timings, "identity_judge"):
        log("identity judge")
        input_emb = identity_judge.embed(inputs.faces)
        output_emb = identity_judge.embed(generated)
        pairs = ai.impostor_pairs(len(inputs), max_impostor_pairs)
        table = ai.identity_table(input_emb, output_emb[:, None], input_emb[pairs[:, 0]],
                                  input_emb[pairs[:, 1]], identity_judge.THRESHOLD)
        outputs_row = {k: v for k, v in table["groups"][0].items() if k not in ("group", "name")}
        identity = {"threshold": table["threshold"], direction: outputs_row,
                    "impostor": table["impostor"],
                    "impostor_source": ("pairs of different input faces, assumed to be "
                                        "different people (the lists carry no identities)")}
        distances = ai.embedding_distances(input_emb, output_emb)
    with _timed(timings, "realism"):
        log(f"realism features ({features.name})")
        realism = _translation_realism(features, inputs, generated, real_old, kid_subsets,
                                       kid_subset_size)
    results = {
        "settings": {"direction": direction, "old_min_age": float(old_min_age),
                     "batch_size": batch_size, "image_size": int(inputs.faces.shape[1]),
                     "max_impostor_pairs": max_impostor_pairs},
        "counts": {"inputs": len(inputs), "generated": int(len(generated)),
                   "real_old": len(real_old)},
        "judges": {"age": age_judge.describe(), "identity": identity_judge.describe()},
        "age": age,
        "identity": identity,
        "realism": realism,
        "checkerboard": checkerboard_table(inputs.faces, [generated], [direction]),
        "runtime_seconds": {k: round(v, 2) for k, v in timings.items()},
        "faces": [{"path": p, "label": int(l), "input_age": float(input_ages[i]),
                   "output_age": float(output_ages[i]),
                   "age_shift": float(output_ages[i] - input_ages[i]),
                   "identity_distance": float(distances["euclidean"][i]),
                   "verified": bool(distances["euclidean"][i] <= identity_judge.THRESHOLD)}
                  for i, (p, l) in enumerate(zip(inputs.paths, inputs.labels))],
    }
    arrays = {"generated": generated, "inputs": inputs.faces, "input_ages": input_ages,
              "output_ages": output_ages, "real_old_ages": real_old_ages,
              "identity_distances": distances["euclidean"],
              "impostor_distances": np.linalg.norm(input_emb[pairs[:, 0]] - input_emb[pairs[:, 1]],
                                                   axis=-1)}
    return results, arrays


def _translation_realism(features, inputs: FaceSet, generated: np.ndarray, real_old: FaceSet,
                         kid_subsets: int, kid_subset_size: int) -> Dict:
    """FID/KID of the translated faces and of the unaltered inputs against the real old."""
    input_acts, _ = features.features_and_probabilities(inputs.faces)
    gen_acts, _ = features.features_and_probabilities(generated)
    real_acts = features.features_and_probabilities(real_old.faces)[0] if len(real_old) \
        else np.zeros((0, gen_acts.shape[-1]))
    feature_info = features.describe()
    return {"features": feature_info,
            "outputs_vs_real_old": _realism_pair(gen_acts, real_acts, kid_subsets,
                                                 kid_subset_size),
            "inputs_vs_real_old": _realism_pair(input_acts, real_acts, kid_subsets,
                                                kid_subset_size),
            "comparable_to_published_fid": bool(feature_info["comparable_to_published_fid"]),
            "note": ("FID is biased upwards at small sample counts (compare only equal "
                     "counts); KID is unbiased. 'inputs_vs_real_old' measures the unaltered "
                     "young inputs the same way: the distance a translation starts from.")}
