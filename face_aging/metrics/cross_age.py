r"""Cross-age identity check: age a person's young photo, verify it against their adult one.

For people held out from every training (LAG's test split, ``test_cross_age.txt`` =
``identity young_path old_path``), each young photo is aged by the generator to the oldest
target groups (default 3 and 4), and dlib's face recogniser (``judges.IdentityJudge``,
same person when the Euclidean embedding distance is <= 0.6, as everywhere in
``evaluate.py``) compares:

- **aged face vs the same person's adult photo** (genuine pairs): how often it verifies;
- **the young photo itself vs the adult photo**: the do-nothing baseline. An aging model that
  keeps identity and moves the face towards the adult should at least match it;
- **impostors**: the same faces against every *other* held-out person's adult photos, the
  false-accept rate at the same threshold, so a high genuine rate cannot come from faces
  that match everybody.

Rates are over pairs (every line of the list; a person with many photos weighs more) and,
beside them, over people (each person's own rate, averaged). The age judge's mean age of
the young photos, the aged faces and the adult photos shows how far the aging went.

Library code: ``age_fn(uint8 faces [B, 128, 128, 3], group) -> uint8 faces`` as in
``evaluation``; the table (:func:`cross_age_table`) is pure numpy on embeddings.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from face_aging.metrics import age_identity as ai
from face_aging.metrics.evaluation import IMAGE_SIZE, EvaluationInputError, FaceSet, load_faces

DEFAULT_TARGET_GROUPS = (3, 4)


@dataclass
class CrossAgeSet:
    """Unique young and adult photos and the genuine pairs between them.

    ``pairs``: ``[P, 2]`` indices (young index, old index); ``young_person`` /
    ``old_person``: the identity of each photo.
    """
    young: FaceSet
    old: FaceSet
    pairs: np.ndarray
    young_person: np.ndarray
    old_person: np.ndarray

    @property
    def people(self) -> int:
        return int(len(np.unique(self.young_person[self.pairs[:, 0]])))


def read_cross_age(pairs_file: str, root: Optional[str] = None, max_people: Optional[int] = None,
                   size: int = IMAGE_SIZE) -> CrossAgeSet:
    """Reads ``test_cross_age.txt`` and its faces (``evaluation.read_face``: cv2 resize to
    ``size``). ``root`` defaults to the file's folder; ``max_people`` keeps the first N
    identities (by id).

    Raises:
      EvaluationInputError: a bad list line, a missing or unreadable image, or fewer than
        two people (no impostor pairs then).
    """
    from face_aging.data import identity, lists

    try:
        rows = identity.read_cross_age(pairs_file)
    except lists.ListFormatError as e:
        raise EvaluationInputError(str(e)) from None
    root = os.path.dirname(os.path.abspath(pairs_file)) if root is None else root
    people = sorted({r[0] for r in rows})
    if max_people:
        keep = set(people[:max_people])
        rows = [r for r in rows if r[0] in keep]
    if len({r[0] for r in rows}) < 2:
        raise EvaluationInputError(f"{pairs_file}: the cross-age check needs at least 2 people "
                                   "(impostor pairs are pairs of different people)")
    young_paths = sorted({r[1] for r in rows})
    old_paths = sorted({r[2] for r in rows})
    person_of = {}
    for person, young, old in rows:
        for path in (young, old):
            if person_of.setdefault(path, person) != person:
                raise EvaluationInputError(f"{pairs_file}: {path} belongs to identities "
                                           f"{person_of[path]} and {person}")
    young_index = {p: k for k, p in enumerate(young_paths)}
    old_index = {p: k for k, p in enumerate(old_paths)}
    young = load_faces(root, [(p, person_of[p]) for p in young_paths], size)
    old = load_faces(root, [(p, person_of[p]) for p in old_paths], size)
    pairs = np.asarray([(young_index[y], old_index[o]) for _, y, o in rows], np.int64)
    return CrossAgeSet(young, old, pairs, young.labels, old.labels)


def _rates(distances: np.ndarray, person: np.ndarray, threshold: float) -> Dict:
    verified = distances <= threshold
    per_person = [float(np.mean(verified[person == p])) for p in np.unique(person)]
    return {"n": int(distances.size), "verified": float(np.mean(verified)) if distances.size
            else None, "verified_per_person": float(np.mean(per_person)) if per_person else None,
            "mean_distance": float(np.mean(distances)) if distances.size else None}


def cross_age_table(young_emb: np.ndarray, aged_emb: np.ndarray, old_emb: np.ndarray,
                    pairs: np.ndarray, young_person: np.ndarray, old_person: np.ndarray,
                    threshold: float = ai.DLIB_THRESHOLD,
                    target_groups: Sequence[int] = DEFAULT_TARGET_GROUPS,
                    group_names: Optional[Sequence[str]] = None) -> Dict:
    """The cross-age figures from embeddings (pure numpy).

    Args:
      young_emb ``[Y, D]``, aged_emb ``[Y, T, D]`` (young photo y aged to target_groups[t]),
      old_emb ``[O, D]``; pairs ``[P, 2]`` (young index, old index) of the same person;
      young_person ``[Y]``, old_person ``[O]`` identities.
    Returns:
      ``{"threshold", "baseline", "groups": [...], "pairs", "people"}``. ``baseline`` and each
      group's row hold ``genuine`` (aged / young vs the same person's adult photo: ``n``,
      ``verified`` share of pairs, ``verified_per_person`` the mean of each person's share,
      ``mean_distance``), ``impostor`` (vs every other person's adult photos: ``n``,
      ``verified`` = false-accept rate, ``mean_distance``), and for groups
      ``closer_than_young``: the share of genuine pairs whose aged face is nearer the adult
      photo than the young photo is.
    """
    pairs = np.asarray(pairs, np.int64)
    y, o = pairs[:, 0], pairs[:, 1]
    person = young_person[y]
    other = young_person[:, None] != old_person[None, :]  # [Y, O] pairs of different people
    iy, io = np.nonzero(other)

    def row(faces: np.ndarray) -> Dict:
        genuine = np.linalg.norm(faces[y] - old_emb[o], axis=1)
        impostor = np.linalg.norm(faces[iy] - old_emb[io], axis=1)
        return {"genuine": _rates(genuine, person, threshold), "_impostor": impostor,
                "impostor": {"n": int(impostor.size),
                             "verified": float(np.mean(impostor <= threshold))
                             if impostor.size else None,
                             "mean_distance": float(np.mean(impostor)) if impostor.size else None},
                "_genuine": genuine}

    baseline = row(young_emb)
    groups = []
    for t, g in enumerate(target_groups):
        entry = row(aged_emb[:, t])
        entry["closer_than_young"] = float(np.mean(entry["_genuine"] < baseline["_genuine"]))
        groups.append({"group": int(g), "name": group_names[g] if group_names else str(g),
                       **entry})
    distances = {"young": baseline.pop("_genuine"),
                 **{f"group_{r['group']}": r.pop("_genuine") for r in groups}}
    impostors = baseline.pop("_impostor")
    for r in groups:
        r.pop("_impostor")
    return {"threshold": float(threshold), "pairs": int(len(pairs)),
            "people": int(len(np.unique(person))), "baseline": baseline, "groups": groups,
            "_distances": distances, "_impostor_distances": impostors}


def run_cross_age_evaluation(age_fn: Callable[[np.ndarray, int], np.ndarray], data: CrossAgeSet,
                             *, identity_judge, age_judge=None,
                             target_groups: Sequence[int] = DEFAULT_TARGET_GROUPS,
                             bins: Sequence[float] = ai.DEFAULT_AGE_BINS, batch_size: int = 32,
                             log: Callable[[str], None] = print):
    """Ages every young photo to ``target_groups``, judges, returns ``(results, arrays)``.

    ``results`` is JSON-ready (:func:`cross_age_table` plus judged ages, counts, runtimes,
    and every pair's distances); ``arrays`` holds the faces for the report's pictures.
    """
    from face_aging.metrics.evaluation import generate_all

    groups = len(bins) + 1
    bad = [g for g in target_groups if not 0 <= g < groups]
    if bad:
        raise EvaluationInputError(f"target group {bad[0]} is not in 0..{groups - 1}")
    names = ai.group_names(bins)
    timings = {}
    t = time.time()
    log(f"aging {len(data.young)} young photos to group(s) "
        f"{', '.join(str(g) for g in target_groups)}")
    aged_all = generate_all(lambda faces, k: age_fn(faces, target_groups[k]), data.young.faces,
                            len(target_groups), batch_size)  # [Y, T, H, W, 3]
    timings["generate"] = time.time() - t

    t = time.time()
    log("identity judge")
    young_emb = identity_judge.embed(data.young.faces)
    old_emb = identity_judge.embed(data.old.faces)
    aged_emb = identity_judge.embed(aged_all.reshape((-1,) + aged_all.shape[2:])).reshape(
        len(data.young), len(target_groups), -1)
    table = cross_age_table(young_emb, aged_emb, old_emb, data.pairs, data.young_person,
                            data.old_person, identity_judge.THRESHOLD, target_groups, names)
    distances = table.pop("_distances")
    impostor_distances = table.pop("_impostor_distances")
    timings["identity_judge"] = time.time() - t

    ages = None
    if age_judge is not None:
        t = time.time()
        log("age judge")
        young_ages = age_judge.estimate(data.young.faces)
        old_ages = age_judge.estimate(data.old.faces)
        aged_ages = age_judge.estimate(aged_all.reshape((-1,) + aged_all.shape[2:])).reshape(
            len(data.young), len(target_groups))
        ages = {"young_mean_age": float(np.mean(young_ages)),
                "adult_mean_age": float(np.mean(old_ages)),
                "aged_mean_age": {str(g): float(np.mean(aged_ages[:, t]))
                                  for t, g in enumerate(target_groups)},
                "judge": age_judge.describe()}
        timings["age_judge"] = time.time() - t
    y, o = data.pairs[:, 0], data.pairs[:, 1]
    results = {
        "mode": "cross_age",
        "settings": {"target_groups": [int(g) for g in target_groups],
                     "age_bins": [float(b) for b in bins], "groups": names,
                     "batch_size": batch_size, "image_size": int(data.young.faces.shape[1])},
        "counts": {"pairs": int(len(data.pairs)), "people": data.people,
                   "young_photos": len(data.young), "adult_photos": len(data.old),
                   "generated": int(len(data.young) * len(target_groups))},
        "judges": {"identity": identity_judge.describe(),
                   **({"age": ages["judge"]} if ages else {})},
        "identity": table,
        "age": ages,
        "runtime_seconds": {k: round(v, 2) for k, v in timings.items()},
        "pairs": [{"identity": int(data.young_person[a]), "young": data.young.paths[a],
                   "adult": data.old.paths[b], "young_distance": float(distances["young"][i]),
                   **{f"aged_{g}_distance": float(distances[f"group_{g}"][i])
                      for g in target_groups}}
                  for i, (a, b) in enumerate(zip(y, o))],
    }
    arrays = {"young": data.young.faces, "aged": aged_all, "old": data.old.faces,
              "pairs": data.pairs, "distances": distances,
              "impostor_distances": impostor_distances}
    return results, arrays


# --------------------------------------------------------------------------- the report

def distances_plot_png(distances: Dict[str, np.ndarray], impostor_distances: np.ndarray,
                       threshold: float, labels: Dict[str, str]) -> bytes:
    """Histograms of genuine-pair distances (young photo, each aged group) and of the young
    photos' impostor distances (other people's adult photos), with the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from face_aging.metrics.report import figure_png

    fig, ax = plt.subplots(figsize=(7, 4.5))
    hi = max(1.2, float(np.max(impostor_distances, initial=0)),
             max(float(np.max(v, initial=0)) for v in distances.values()))
    edges = np.linspace(0, hi, 40)
    if len(impostor_distances):
        ax.hist(impostor_distances, bins=edges, density=True, color="grey", alpha=0.35,
                label="young photo vs other people's adult photos (impostors)")
    for key, values in distances.items():
        ax.hist(values, bins=edges, histtype="step", density=True, lw=1.5, label=labels[key])
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"same-person threshold {threshold}")
    ax.set_xlabel("Euclidean distance of dlib face embeddings to an adult photo")
    ax.set_ylabel("density")
    ax.set_title("Cross-age identity: distance to the adult photo")
    ax.legend(fontsize=8)
    return figure_png(fig)


def render_html(report: Dict, images: Dict[str, str]) -> str:
    """The cross-age report page."""
    import html
    import json

    from face_aging.metrics.report import fmt, html_table

    ident, counts = report["identity"], report["counts"]
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    model = report.get("model", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>face_aging cross-age "
        "evaluation</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;}"
        "table{border-collapse:collapse;margin:1em 0;}td,th{border:1px solid #bbb;padding:3px 8px;"
        "text-align:right;}th{background:#eee;}.warn{color:#a00;font-weight:bold;}"
        "code{background:#f4f4f4;}</style></head><body>",
        "<h1>face_aging evaluation: cross-age identity</h1>",
    ]
    if model.get("untrained"):
        parts.append("<p class='warn'>UNTRAINED GENERATOR (random weights): these numbers "
                     "measure nothing but the pipeline.</p>")
    parts.append("<p>Model: <code>" + html.escape(str(model.get("checkpoint"))) + "</code>; "
                 "pairs: <code>" + html.escape(str(report.get("data", {}).get("pairs_file"))) +
                 f"</code>; {counts['pairs']} young/adult pairs of {counts['people']} people "
                 f"({counts['young_photos']} young photos aged, {counts['adult_photos']} adult "
                 "photos).</p>")
    parts.append("<h2>Identity (independent judge: " +
                 html.escape(report["judges"]["identity"]["name"]) + ")</h2>")
    base = ident["baseline"]
    rows = [["young photo, not aged (do-nothing baseline)", base["genuine"]["n"],
             pct(base["genuine"]["verified"]), pct(base["genuine"]["verified_per_person"]),
             fmt(base["genuine"]["mean_distance"]), "–", pct(base["impostor"]["verified"]),
             base["impostor"]["n"]]]
    for r in ident["groups"]:
        rows.append([f"aged to group {r['group']} ({html.escape(r['name'])})", r["genuine"]["n"],
                     pct(r["genuine"]["verified"]), pct(r["genuine"]["verified_per_person"]),
                     fmt(r["genuine"]["mean_distance"]), pct(r["closer_than_young"]),
                     pct(r["impostor"]["verified"]), r["impostor"]["n"]])
    parts.append(html_table(["compared with the same person's adult photo", "pairs",
                         f"verified (distance <= {ident['threshold']})", "verified, per person",
                         "mean distance", "nearer than the young photo",
                         "impostors verified (false accepts)", "impostor pairs"], rows))
    parts.append("<p>'verified': share of young/adult pairs of one person the judge accepts; "
                 "'per person': each person's share, averaged. An aging model that keeps "
                 "identity should at least match the do-nothing baseline. Impostors: the same "
                 "faces against every other person's adult photos.</p>")
    if report.get("age"):
        a = report["age"]
        parts.append("<h2>Age (independent judge)</h2>" + html_table(
            ["faces", "mean est. age"],
            [["young photos", fmt(a["young_mean_age"], 1)]] +
            [[f"aged to group {g}", fmt(v, 1)] for g, v in a["aged_mean_age"].items()] +
            [["adult photos", fmt(a["adult_mean_age"], 1)]]))
    parts.append(f"<img src='{images['distances']}' alt='distance histograms'>")
    parts.append("<h2>Examples</h2><p>Each row: the young photo, its aged versions (groups " +
                 ", ".join(str(g) for g in report["settings"]["target_groups"]) +
                 "), then the same person's adult photo.</p>")
    parts.append(f"<img src='{images['examples']}' alt='example strips'>")
    parts.append("<p>Runtime (s): " + html.escape(json.dumps(report.get("runtime_seconds", {}))) +
                 ". Every pair's distances are in <code>report.json</code>.</p></body></html>")
    return "\n".join(parts)


def write_report(output_dir: str, report: Dict, arrays: Dict) -> Dict[str, str]:
    """Writes report.json, report.html, cross_age_distances.png and examples.png (each
    through a temporary file and a rename); returns their paths."""
    from face_aging.metrics.report import strips_png, write_files

    os.makedirs(output_dir, exist_ok=True)
    images = {"distances": "cross_age_distances.png", "examples": "examples.png"}
    groups = report["settings"]["target_groups"]
    names = report["settings"]["groups"]
    labels = {"young": "young photo (not aged)",
              **{f"group_{g}": f"aged to group {g} ({names[g]})" for g in groups}}
    pairs = arrays["pairs"]
    picks = _spread(pairs[:, 0], 8)
    columns = np.concatenate([arrays["aged"][pairs[picks, 0]],
                              arrays["old"][pairs[picks, 1]][:, None]], axis=1)
    pngs = {"distances": distances_plot_png(arrays["distances"], arrays["impostor_distances"],
                                            report["identity"]["threshold"], labels),
            "examples": strips_png(arrays["young"][pairs[picks, 0]], columns, rows=len(picks))}
    report["examples"] = [report["pairs"][i]["young"] for i in picks]
    return write_files(output_dir, report, images, pngs, render_html)


def _spread(young_index: np.ndarray, count: int) -> List[int]:
    """Up to ``count`` pair indices with distinct young photos, spread over the list."""
    first = {}
    for i, y in enumerate(young_index.tolist()):
        first.setdefault(y, i)
    chosen = sorted(first.values())
    if len(chosen) <= count:
        return chosen
    return [chosen[int(k)] for k in np.linspace(0, len(chosen) - 1, count).round()]
