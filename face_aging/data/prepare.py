r"""Prepares a face-aging dataset in the release's layout, in one command (the command:
``face_aging.apps.prepare``; this module: the readers by name and the summary lines).

    python -m face_aging.data.prepare --dataset=utkface --input=/data/UTKFace \
        --output_dir=data/utkface
    python train_ipcgan.py --root_folder=data/utkface --list_dir=data/utkface ...

Datasets: ``imdb_wiki`` (``--input=wiki.mat`` or ``imdb.mat``), ``cacd``
(``--input=celebrity2000_meta.mat``), ``utkface`` (``--input=`` the image folder),
``folder`` (``--input=`` a folder with one sub-folder per group, or a CSV of
``path,age[,identity]``). See docs/DATA.md and ``face_aging.data.build`` for the output.

Identity-only datasets (people, no ages; ``face_aging.data.identity``): ``cacd_vs``
(``--input=`` the folder with ``pairs.csv``) and ``lag`` (``--input=`` the folder with
``labels.csv``); their folders hold identity and verification lists and no age lists.
"""
from __future__ import annotations

from face_aging.data import identity, sources

AGE_DATASETS = ("imdb_wiki", "cacd", "utkface", "folder")
DATASETS = AGE_DATASETS + identity.DATASETS


def read_source(dataset: str, input_path: str, image_dir, min_age, max_age, min_face_score,
                keep_second_face, imdb_wiki_age, strict_names, folder_groups) -> sources.SourceResult:
    """Runs the reader of ``dataset`` with plain arguments."""
    if dataset == "imdb_wiki":
        return sources.read_imdb_wiki(input_path, image_dir, min_face_score, keep_second_face,
                                      imdb_wiki_age, min_age, 100 if max_age is None else max_age)
    if dataset == "cacd":
        return sources.read_cacd(input_path, image_dir, min_age, max_age)
    if dataset == "utkface":
        return sources.read_utkface(input_path, strict_names, min_age, max_age)
    mapping = sources.parse_folder_groups(folder_groups) if folder_groups else None
    return sources.read_folder(input_path, mapping, min_age, max_age)


def format_identity_summary(summary: dict) -> str:
    """A few lines of an identity folder's summary."""
    out = [f"{summary['dataset']}: read {summary['records_read']} records, kept "
           f"{summary['kept']} images ({summary['images_written']} written, "
           f"{summary['images_existing']} already there), dropped {summary['dropped_total']} "
           f"in {summary['seconds']} s"]
    for reason, info in summary["dropped"].items():
        example = info["examples"][0]
        out.append(f"  dropped {reason}: {info['count']} (e.g. {example['item']}: {example['detail']})")
    for reason, info in summary["notes"].items():
        out.append(f"  note {reason}: {info['count']} (e.g. {info['examples'][0]['item']})")
    for split in ("train", "test"):
        out.append(f"  {split}: {summary['identities'][split]} identities, "
                   f"{summary['identity_images'][split]} images in {split}_identity.txt "
                   f"({summary['images'][split]} images in all)")
    if "verification_pairs" in summary:
        v = summary["verification_pairs"]
        out.append(f"  {v['file']}: {v['pairs']} pairs ({v['same']} same, {v['different']} "
                   f"different) of folds {','.join(map(str, v['folds']))}")
    if "cross_age_pairs" in summary:
        c = summary["cross_age_pairs"]
        out.append(f"  {c['file']}: {c['pairs']} young/old pairs of {c['people']} held-out people"
                   + (f" ({c['held_out_people_without_young_and_old']} held out without both "
                      "a young and an old photo)" if c["held_out_people_without_young_and_old"]
                      else ""))
    out.append(f"  identity lists (no age lists) and summary.json in {summary['output_dir']}")
    return "\n".join(out)


def format_summary(summary: dict) -> str:
    """A few human-readable lines of the summary (the JSON has everything)."""
    out = [f"{summary['dataset']}: read {summary['records_read']}, kept {summary['kept']} "
           f"({summary['images_written']} written, {summary['images_existing']} already there), "
           f"dropped {summary['dropped_total']} in {summary['seconds']} s"]
    for reason, info in summary["dropped"].items():
        example = info["examples"][0]
        out.append(f"  dropped {reason}: {info['count']} (e.g. {example['item']}: {example['detail']})")
    for reason, info in summary["notes"].items():
        example = info["examples"][0]
        out.append(f"  note {reason}: {info['count']} (e.g. {example['item']})")
    names = summary["group_names"]
    for split in ("train", "test"):
        cells = ", ".join(f"{k} [{n}]: {c}" for k, (n, c) in enumerate(zip(names, summary["groups"][split])))
        out.append(f"  {split}: {cells}")
    for warning in summary.get("warnings", []):
        out.append(f"  warning: {warning}")
    out.append(f"  lists and summary.json/summary.png in {summary['output_dir']}: train with "
               f"--root_folder={summary['output_dir']} --list_dir={summary['output_dir']}")
    return "\n".join(out)


if __name__ == "__main__":  # the documented command
    from face_aging.apps.prepare import run

    run()
