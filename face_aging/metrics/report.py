"""Writes the evaluation report: ``report.json``, ``report.html`` and its PNGs.

Every file is written by ``face_aging.files`` (a temporary name and a rename), so a reader
never sees a half-written report; ``report.json`` has sorted keys and NaN/inf as null. Plots
are matplotlib (Agg backend, no display needed).
"""
from __future__ import annotations

import html
import io
import json
import os
from typing import Callable, Dict, List, Sequence

import numpy as np

from face_aging import files


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def age_plot_png(generated_ages: np.ndarray, real_ages: Sequence[np.ndarray],
                 bins: Sequence[float], names: Sequence[str]) -> bytes:
    """Judge's age of the outputs (dots, mean +- std) against the target group, with each
    group's age band shaded and the real faces' mean age as the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = len(names)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    edges = [0.0] + [float(b) for b in bins] + [85.0]
    rng = np.random.default_rng(0)
    for g in range(groups):
        ax.add_patch(plt.Rectangle((g - 0.4, edges[g]), 0.8, edges[g + 1] - edges[g],
                                   color="tab:green", alpha=0.12, lw=0))
        ages = generated_ages[:, g]
        ax.scatter(g - 0.1 + rng.uniform(-0.08, 0.08, len(ages)), ages, s=6, color="tab:blue",
                   alpha=0.35)
        if len(real_ages[g]):
            ax.errorbar(g + 0.15, np.mean(real_ages[g]), yerr=np.std(real_ages[g]), fmt="s",
                        color="tab:orange", capsize=3,
                        label="real faces of the group" if g == 0 else None)
    ax.errorbar(np.arange(groups) - 0.1, generated_ages.mean(0), yerr=generated_ages.std(0),
                fmt="o-", color="tab:blue", capsize=3, label="generated (mean ± std)")
    ax.set_xticks(range(groups), [f"{g}\n{n}" for g, n in enumerate(names)])
    ax.set_xlabel("target age group")
    ax.set_ylabel("estimated age (years, independent judge)")
    ax.set_ylim(0, 85)
    ax.set_title("Estimated age against target group (green: the group's age band)")
    ax.legend(loc="upper left", fontsize=8)
    return figure_png(fig)


def identity_plot_png(identity_distances: np.ndarray, impostor_distances: np.ndarray,
                      threshold: float, names: Sequence[str]) -> bytes:
    """Histograms of input-output embedding distances per target group vs impostor pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    hi = max(1.2, float(np.max(identity_distances, initial=0)), float(np.max(impostor_distances, initial=0)))
    edges = np.linspace(0, hi, 40)
    for g, name in enumerate(names):
        ax.hist(identity_distances[:, g], bins=edges, histtype="step", density=True,
                label=f"input vs output, group {g} ({name})")
    if len(impostor_distances):
        ax.hist(impostor_distances, bins=edges, density=True, color="grey", alpha=0.4,
                label="different real people (impostors)")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"same-person threshold {threshold}")
    ax.set_xlabel("Euclidean distance of dlib face embeddings")
    ax.set_ylabel("density")
    ax.set_title("Identity: distance of each output from its input")
    ax.legend(fontsize=7)
    return figure_png(fig)


def realism_plot_png(realism: Dict) -> bytes:
    """KID (± std over subsets) per target group, generated and unaltered inputs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = realism["per_group"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(rows))
    val = lambda v: np.nan if v is None else v
    ax.bar(x - 0.2, [val(r["kid"]) for r in rows], 0.4,
           yerr=[val(r.get("kid_std")) if r.get("kid_std") is not None else 0 for r in rows],
           label="generated vs real of the group")
    ax.bar(x + 0.2, [val(r["inputs_vs_real"]["kid"]) for r in rows], 0.4, color="tab:gray",
           label="unaltered inputs vs real of the group")
    ax.set_xticks(x, [f"{r['group']}\n{r['name']}" for r in rows])
    ax.set_xlabel("target age group")
    ax.set_ylabel(f"KID ({realism['features']['name']})")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    return figure_png(fig)


def strips_png(inputs: np.ndarray, generated: np.ndarray, rows: int = 8, gap: int = 4) -> bytes:
    """A grid of example strips: each row is the input face then its output for each group."""
    import cv2

    n = min(rows, len(inputs))
    if n == 0:
        return b""
    h, w = inputs.shape[1:3]
    groups = generated.shape[1]
    # The input, a double gap, then one column per group.
    canvas = np.full((n * (h + gap) - gap, (groups + 1) * (w + gap), 3), 255, np.uint8)
    for i in range(n):
        y = i * (h + gap)
        canvas[y:y + h, :w] = inputs[i]
        for g in range(groups):
            x = (g + 1) * (w + gap) + gap
            canvas[y:y + h, x:x + w] = generated[i, g]
    ok, png = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("could not encode the example strips")
    return png.tobytes()


def example_indices(source_groups: np.ndarray, count: int = 8) -> List[int]:
    """Up to ``count`` input indices spread over the source groups (round robin)."""
    by_group = [list(np.flatnonzero(source_groups == g)) for g in np.unique(source_groups)]
    picked = []
    while len(picked) < count and any(by_group):
        for members in by_group:
            if members and len(picked) < count:
                picked.append(int(members.pop(0)))
    return picked


def fmt(v, digits=3):
    """A number for a report table: ``–`` for None, ``digits`` decimals for a float."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def html_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """An HTML table: escaped ``headers``, then ``rows`` of cells (HTML, not escaped)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def checkerboard_html(table: Dict) -> str:
    """The checkerboard score's section (``evaluation.checkerboard_table``): each period's
    share, then its horizontal-lines / vertical-lines / diagonal parts."""
    parts = lambda r, p: (f"{fmt(r[f'period_{p}'], 2)} ({fmt(r.get(f'period_{p}_horizontal_lines'), 2)}"
                          f" / {fmt(r.get(f'period_{p}_vertical_lines'), 2)}"
                          f" / {fmt(r.get(f'period_{p}_diagonal'), 2)})")
    rows = [["inputs", "", parts(table["inputs"], 2), parts(table["inputs"], 4)]]
    rows += [[r["group"], fmt(r["name"]), parts(r, 2), parts(r, 4)] for r in table["groups"]]
    return ("<h2>Checkerboard (spectral power at the upsampling periods)</h2>" +
            html_table(["faces", "", "period 2 px (horizontal lines / vertical lines / diagonal)",
                        "period 4 px (horizontal lines / vertical lines / diagonal)"], rows) +
            "<p>" + html.escape(table["note"]) + ".</p>")


def render_html(report: Dict, images: Dict[str, str]) -> str:
    """The report page; ``images`` maps plot names to file names beside report.html."""
    age = report["age"]["groups"]
    ident = report["identity"]
    real = report["realism"]
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>face_aging evaluation</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;}"
        "table{border-collapse:collapse;margin:1em 0;}td,th{border:1px solid #bbb;padding:3px 8px;"
        "text-align:right;}th{background:#eee;}.warn{color:#a00;font-weight:bold;}"
        "code{background:#f4f4f4;}</style></head><body>",
        "<h1>face_aging evaluation</h1>",
    ]
    model = report.get("model", {})
    if model.get("untrained"):
        parts.append("<p class='warn'>UNTRAINED GENERATOR (random weights): these numbers "
                     "measure nothing but the pipeline.</p>")
    parts.append("<p>Model: <code>" + html.escape(str(model.get("checkpoint"))) + "</code>; "
                 "data: <code>" + html.escape(str(report.get("data", {}).get("list_dir"))) +
                 "</code>; " + f"{report['counts']['inputs']} input faces, "
                 f"{report['counts']['generated']} generated, real per group "
                 f"{report['counts']['real_per_group']}.</p>")
    parts.append("<h2>Age (independent judge: " + html.escape(report["judges"]["age"]["name"]) +
                 ")</h2>")
    parts.append(html_table(
        ["target group", "ages", "n outputs", "mean est. age", "std", "in target group",
         "mean change vs input", "n real", "real: mean est. age", "real: in group (ceiling)"],
        [[r["group"], fmt(r["name"]), r["n"], fmt(r["mean_age"], 1), fmt(r["std_age"], 1),
          pct(r["in_group"]), fmt(r["mean_age_change"], 1), r["real_n"],
          fmt(r["real_mean_age"], 1), pct(r["real_in_group"])] for r in age]))
    parts.append(f"<img src='{images['age']}' alt='age plot'>")
    parts.append("<h2>Identity (independent judge: " +
                 html.escape(report["judges"]["identity"]["name"]) + ")</h2>")
    imp = ident["impostor"]
    rows = [[r["group"], fmt(r["name"]), r["n"], fmt(r["mean_cosine"]), fmt(r["mean_distance"]),
             pct(r["verified"])] for r in ident["groups"]]
    rows.append(["impostors", "different people", imp["n"], fmt(imp["mean_cosine"]),
                 fmt(imp["mean_distance"]), pct(imp["verified"])])
    parts.append(html_table(["target group", "ages", "pairs", "mean cosine sim.", "mean distance",
                         f"verified (distance <= {ident['threshold']})"], rows))
    parts.append("<p>For outputs, 'verified' is the verification rate against the input (higher "
                 "= identity kept); for impostors it is the false-accept rate. Impostors: " +
                 html.escape(ident.get("impostor_source", "")) + ".</p>")
    parts.append(f"<img src='{images['identity']}' alt='identity plot'>")
    feats = real["features"]
    parts.append("<h2>Realism: FID and KID (" + html.escape(feats["name"]) + ")</h2>")
    if not real["comparable_to_published_fid"]:
        parts.append("<p class='warn'>Features: " + html.escape(str(feats.get("note", ""))) +
                     " (weights: " + html.escape(str(feats.get("weights"))) + ").</p>")
    rows = [[r["group"], fmt(r["name"]), r["n_generated"], r["n_real"], fmt(r["fid"], 2),
             fmt(r["kid"], 4), fmt(r.get("kid_std"), 4), fmt(r["inputs_vs_real"]["fid"], 2),
             fmt(r["inputs_vs_real"]["kid"], 4)] for r in real["per_group"]]
    p = real["pooled"]
    rows.append(["pooled", "all", p["n_generated"], p["n_real"], fmt(p["fid"], 2),
                 fmt(p["kid"], 4), fmt(p.get("kid_std"), 4), fmt(p["inputs_vs_real"]["fid"], 2),
                 fmt(p["inputs_vs_real"]["kid"], 4)])
    parts.append(html_table(["target group", "ages", "n generated", "n real", "FID", "KID",
                         "KID std", "inputs: FID", "inputs: KID"], rows))
    parts.append("<p>" + html.escape(real["note"]) + "</p>")
    parts.append(f"<img src='{images['realism']}' alt='realism plot'>")
    score = report["inception_score"]
    parts.append("<h3>Inception Score (only as the seed reported it)</h3><p>")
    if score.get("mean") is None:
        parts.append(html.escape(score["note"]))
    else:
        parts.append(f"{score['mean']:.3f} ± {score['std']:.3f} over {score['splits']} splits of "
                     f"{score['n']} generated faces. " + html.escape(score["note"]))
    parts.append("</p>")
    if "checkerboard" in report:
        parts.append(checkerboard_html(report["checkerboard"]))
    groups = report["settings"]["groups"]
    parts.append("<h2>Examples</h2><p>Each row: the input, then its output for target group " +
                 ", ".join(f"{g} ({n})" for g, n in enumerate(groups)) + ".</p>")
    parts.append(f"<img src='{images['examples']}' alt='example strips'>")
    parts.append("<p>Runtime (s): " + html.escape(json.dumps(report.get("runtime_seconds", {}))) +
                 ". Every figure is in <code>report.json</code>.</p></body></html>")
    return "\n".join(parts)


def write_files(output_dir: str, report: Dict, images: Dict[str, str], pngs: Dict[str, bytes],
                render: Callable[[Dict, Dict[str, str]], str]) -> Dict[str, str]:
    """Writes a report's files into ``output_dir``: each PNG (``pngs[key]`` as
    ``images[key]``), ``report.json`` (``report`` with a ``files`` entry naming them all) and
    ``report.html`` (``render(report, images)``); returns ``key -> path`` (plus ``json`` and
    ``html``)."""
    for key, data in pngs.items():
        files.atomic_write_bytes(os.path.join(output_dir, images[key]), data)
    report["files"] = dict(images, json="report.json", html="report.html")
    files.atomic_write_json(os.path.join(output_dir, "report.json"), report)
    files.atomic_write_text(os.path.join(output_dir, "report.html"), render(report, images))
    return {key: os.path.join(output_dir, name) for key, name in report["files"].items()}


def write_report(output_dir: str, report: Dict, arrays: Dict) -> Dict[str, str]:
    """Writes report.json, report.html and the PNGs into ``output_dir``; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    bins = report["settings"]["age_bins"]
    names = report["settings"]["groups"]
    images = {"age": "age_vs_target.png", "identity": "identity_distances.png",
              "realism": "realism_kid.png", "examples": "examples.png"}
    pngs = {
        "age": age_plot_png(arrays["generated_ages"], arrays["real_ages"], bins, names),
        "identity": identity_plot_png(arrays["identity_distances"], arrays["impostor_distances"],
                                      report["identity"]["threshold"], names),
        "realism": realism_plot_png(report["realism"]),
    }
    picks = example_indices(np.asarray([f["source_group"] for f in report["faces"]]))
    report["examples"] = [report["faces"][i]["path"] for i in picks]
    pngs["examples"] = strips_png(arrays["inputs"][picks], arrays["generated"][picks], rows=len(picks))
    return write_files(output_dir, report, images, pngs, render_html)


# --------------------------------------------------------------------------- young -> old
# The report of evaluation.run_translation_evaluation (evaluate.py --model=cyclegan), written
# as the IPCGAN one is: the same JSON/HTML writers, tables, plots and atomic files.


def translation_age_plot_png(input_ages: np.ndarray, output_ages: np.ndarray,
                             real_old_ages: np.ndarray, old_min_age: float) -> bytes:
    """Judged age of each output against its input's (dots; above the diagonal = older),
    with the old threshold and the real old faces' mean age."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 85], [0, 85], color="grey", lw=1, ls=":", label="no change")
    ax.axhline(old_min_age, color="tab:green", lw=1, ls="--", label=f"old: >= {old_min_age:g}")
    if len(real_old_ages):
        ax.axhline(float(np.mean(real_old_ages)), color="tab:orange", lw=1,
                   label="real old faces: mean")
    ax.scatter(input_ages, output_ages, s=10, color="tab:blue", alpha=0.6,
               label="face: input age -> output age")
    ax.set_xlim(0, 85)
    ax.set_ylim(0, 85)
    ax.set_xlabel("estimated age of the input (years, independent judge)")
    ax.set_ylabel("estimated age of the output (years)")
    ax.set_title("Judged age before and after young \u2192 old")
    ax.legend(loc="upper left", fontsize=8)
    return figure_png(fig)


def render_translation_html(report: Dict, images: Dict[str, str]) -> str:
    """The report page of a young -> old evaluation."""
    age, ident, real = report["age"], report["identity"], report["realism"]
    direction = report["settings"]["direction"]
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>face_aging evaluation "
        "(CycleGAN)</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;}"
        "table{border-collapse:collapse;margin:1em 0;}td,th{border:1px solid #bbb;padding:3px 8px;"
        "text-align:right;}th{background:#eee;}.warn{color:#a00;font-weight:bold;}"
        "code{background:#f4f4f4;}</style></head><body>",
        f"<h1>face_aging evaluation: CycleGAN {html.escape(direction.replace('_', ' '))}</h1>",
    ]
    model, data = report.get("model", {}), report.get("data", {})
    parts.append("<p>Model: <code>" + html.escape(str(model.get("checkpoint"))) + "</code>; "
                 "data: " + html.escape(str(data.get("split"))) + "; "
                 f"{report['counts']['inputs']} young input faces, "
                 f"{report['counts']['generated']} outputs, "
                 f"{report['counts']['real_old']} real old faces.</p>")
    parts.append("<h2>Age (independent judge: " + html.escape(report["judges"]["age"]["name"]) +
                 ")</h2>")
    parts.append(html_table(
        ["faces", "n", "mean est. age", "std", f"judged >= {age['old_min_age']:g}"],
        [["young inputs", age["n"], fmt(age["input_mean_age"], 1), fmt(age["input_std_age"], 1),
          pct(age["input_old_share"])],
         ["outputs", age["n"], fmt(age["output_mean_age"], 1), fmt(age["output_std_age"], 1),
          pct(age["output_old_share"])],
         ["real old faces (ceiling)", age["real_old_n"], fmt(age["real_old_mean_age"], 1),
          fmt(age["real_old_std_age"], 1), pct(age["real_old_share"])]]))
    parts.append(f"<p><b>Age shift (output - input): {fmt(age['mean_shift'], 1)} years</b> "
                 f"(std {fmt(age['std_shift'], 1)}); {pct(age['share_older'])} of the outputs "
                 "are judged older than their input. " + html.escape(age["note"]) + ".</p>")
    parts.append(f"<img src='{images['age']}' alt='age plot'>")
    parts.append("<h2>Identity (independent judge: " +
                 html.escape(report["judges"]["identity"]["name"]) + ")</h2>")
    out, imp = ident[direction], ident["impostor"]
    parts.append(html_table(
        ["pairs", "n", "mean cosine sim.", "mean distance",
         f"verified (distance <= {ident['threshold']})"],
        [["input vs output", out["n"], fmt(out["mean_cosine"]), fmt(out["mean_distance"]),
          pct(out["verified"])],
         ["impostors (different people)", imp["n"], fmt(imp["mean_cosine"]),
          fmt(imp["mean_distance"]), pct(imp["verified"])]]))
    parts.append("<p>For outputs, 'verified' is the verification rate against the input (higher "
                 "= identity kept); for impostors it is the false-accept rate. Impostors: " +
                 html.escape(ident.get("impostor_source", "")) + ".</p>")
    parts.append(f"<img src='{images['identity']}' alt='identity plot'>")
    feats = real["features"]
    parts.append("<h2>Realism: FID and KID against real old faces (" + html.escape(feats["name"]) +
                 ")</h2>")
    if not real["comparable_to_published_fid"]:
        parts.append("<p class='warn'>Features: " + html.escape(str(feats.get("note", ""))) +
                     " (weights: " + html.escape(str(feats.get("weights"))) + ").</p>")
    rows = [[name, r["n_generated"], r["n_real"], fmt(r["fid"], 2), fmt(r["kid"], 4),
             fmt(r.get("kid_std"), 4)]
            for name, r in (("outputs vs real old", real["outputs_vs_real_old"]),
                            ("young inputs vs real old", real["inputs_vs_real_old"]))]
    parts.append(html_table(["faces", "n", "n real old", "FID", "KID", "KID std"], rows))
    parts.append("<p>" + html.escape(real["note"]) + "</p>")
    parts.append(f"<img src='{images['realism']}' alt='realism plot'>")
    if "checkerboard" in report:
        parts.append(checkerboard_html(report["checkerboard"]))
    parts.append("<h2>Examples</h2><p>Each row: the young input, then its young \u2192 old "
                 "output.</p>")
    parts.append(f"<img src='{images['examples']}' alt='example strips'>")
    parts.append("<p>Runtime (s): " + html.escape(json.dumps(report.get("runtime_seconds", {}))) +
                 ". Every figure and every face's numbers are in <code>report.json</code>."
                 "</p></body></html>")
    return "\n".join(parts)


def write_translation_report(output_dir: str, report: Dict, arrays: Dict) -> Dict[str, str]:
    """Writes report.json, report.html and the PNGs of a young -> old evaluation (atomic, as
    :func:`write_report`); returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    direction = report["settings"]["direction"]
    images = {"age": "age_shift.png", "identity": "identity_distances.png",
              "realism": "realism_kid.png", "examples": "examples.png"}
    kid_rows = {"features": report["realism"]["features"], "per_group": [dict(
        report["realism"]["outputs_vs_real_old"], group=direction.replace("_", " "),
        name="vs real old", inputs_vs_real=report["realism"]["inputs_vs_real_old"])]}
    picks = list(range(min(8, len(arrays["inputs"]))))
    pngs = {
        "age": translation_age_plot_png(arrays["input_ages"], arrays["output_ages"],
                                        arrays["real_old_ages"], report["age"]["old_min_age"]),
        "identity": identity_plot_png(np.asarray(arrays["identity_distances"])[:, None],
                                      arrays["impostor_distances"],
                                      report["identity"]["threshold"],
                                      [direction.replace("_", " ")]),
        "realism": realism_plot_png(kid_rows),
        "examples": strips_png(arrays["inputs"][picks], arrays["generated"][picks][:, None],
                               rows=len(picks)),
    }
    report["examples"] = [report["faces"][i]["path"] for i in picks]
    return write_files(output_dir, report, images, pngs, render_translation_html)
