"""``python test.py``: age faces with a trained IPCGAN generator: the release's test script,
and more.

    python test.py                                  # images/test -> output/test
    python test.py --test_data_dir=photos --detect_faces --all_faces
    python test.py --bn_mode=batch                  # the release: batch statistics
    python test.py --target_groups=0,1,2,3,4 --interpolate=3
    python test.py --checkpoint_dir=pre_trained/acgan.model-399999
    python test.py --model=cyclegan --checkpoint_dir=checkpoints/cyclegan_wiki128
    python test.py --video=clip.mp4 --target_groups=4   # output/test/clip_group4_51+.mp4

For every image: the input, one aged face per target group (``NAME_group3_41-50.png``)
and a 1xN strip; ``index.html`` shows all strips. With ``--model=cyclegan`` (a
``train_cyclegan.py`` checkpoint directory): ``NAME_young_to_old.png``,
``NAME_old_to_young.png`` and the strip input | young -> old | old -> young
(docs/CYCLEGAN.md). One line per file says ``ok`` or
``FAILED`` and why; exit status 0 = all processed, 1 = some file failed, 2 = nothing
could run (no weights, bad flags). See docs/INFERENCE.md.
"""
import dataclasses
import os
import sys
from typing import Callable, Optional, Sequence

from absl import app, flags

# None of these imports TensorFlow: --help and bad flags answer before it loads.
from face_aging import cli, outputs, precision, progress, registry, video
from face_aging.apps import EXAMPLES_DIR
from face_aging.errors import FaceAgingError
from face_aging.images import list_image_files
from face_aging.inference import process_image_files, read_reference_faces
from face_aging.ipcgan import inference


def default_input_dir(kind: str) -> str:
    """``./images/KIND/`` when the working folder has it (a checkout), else the packaged
    example faces (an installed package run from anywhere)."""
    local = os.path.join(".", "images", kind, "")
    return local if os.path.isdir(local) else os.path.join(EXAMPLES_DIR, kind, "")


def define_flags(flag_values=flags.FLAGS):
    """Defines the command's flags on ``flag_values`` (importing this module defines nothing
    on the global absl FLAGS; :func:`run` defines them there)."""
    where = dict(flag_values=flag_values)
    registry.define_model_flag(flag_values, "age", "--checkpoint_dir is the model's weights "
                               "(default: the bundled IPCGAN; cyclegan: train_cyclegan.py's "
                               "default run folder).")
    flags.DEFINE_bool("old_to_young", True, "--model=cyclegan: also write the old -> young "
                      "translation (NAME_old_to_young.png, the strip's third panel).", **where)
    flags.DEFINE_string("checkpoint_dir", None,
                        "Weights: a TF2 checkpoint directory or prefix holding 'generator', or the "
                        "release's TF1 acgan.model-N prefix (or a directory of them); "
                        "--model=cyclegan: a train_cyclegan.py checkpoint directory. Default: "
                        f"the model's ({inference.BUNDLED_CHECKPOINT_DIR} for IPCGAN).", **where)
    flags.DEFINE_integer("model_index", None, "Checkpoint step to use in --checkpoint_dir "
                         "(default: the latest).", **where)
    flags.DEFINE_string("saved_model", None, "Weights from a SavedModel written by "
                        "python -m face_aging.export (instead of --checkpoint_dir).", **where)
    flags.DEFINE_string("test_data_dir", default_input_dir("test"),
                        "Folder (or one file) of images to age (default: ./images/test/ if it "
                        "exists, else the example faces that ship with the package).", **where)
    flags.DEFINE_string("train_data_dir", default_input_dir("train"),
                        "Reference faces for --bn_mode=batch (default: ./images/train/ if it "
                        "exists, else the packaged ones).", **where)
    flags.DEFINE_string("save_dir", "output/test", "Output folder (created; existing files other "
                        "than this run's outputs are kept).", **where)
    flags.DEFINE_enum("bn_mode", "moving", inference.BN_MODES,
                      "Batch norm at test time. moving (the default): the checkpoint's moving "
                      "statistics, each face independent of the others. batch: the release's "
                      "test script, each face normalised in a batch completed with "
                      "--batch_size - 1 faces of --train_data_dir.", **where)
    flags.DEFINE_integer("batch_size", 32, "Generator batch size; in --bn_mode=batch the face "
                         "plus batch_size - 1 reference faces (the release: 32).", lower_bound=1,
                         **where)
    flags.DEFINE_list("target_groups", [str(g) for g in inference.RELEASE_TARGET_GROUPS],
                      "Age groups to render, in order (0 = youngest; the release wrote 1,2,3,4).",
                      **where)
    flags.DEFINE_integer("interpolate", 0, "Blended steps rendered between adjacent target groups "
                         "(soft age vectors).", lower_bound=0, **where)
    flags.DEFINE_list("group_labels", list(inference.DEFAULT_GROUP_LABELS),
                      "Name of each age group, used in file names and the contact sheet.", **where)
    flags.DEFINE_bool("detect_faces", False, "Find faces in each photo (OpenCV), age them and "
                      "paste them back; without it every image is taken as a face crop.", **where)
    flags.DEFINE_bool("all_faces", False,
                      "With --detect_faces: every face, not only the largest.", **where)
    flags.DEFINE_float("face_margin", None, "With --detect_faces: crop margin per side as a "
                       "fraction of the face box. Default: the margin recorded beside the "
                       "weights (model.json's face_crop, e.g. the bundled model's, or the "
                       "training dataset's summary.json), else the data tool's "
                       "face_aging.faces.DEFAULT_MARGIN (0.4).", lower_bound=0.0, **where)
    flags.DEFINE_integer("image_size", None, "Generator input side in pixels (default: recorded "
                         "beside the checkpoint, else 128; CycleGAN: the run's --crop_size).",
                         **where)
    flags.DEFINE_integer("age_groups", None, "Number of age groups of the model (default: "
                         "recorded beside the checkpoint, else 5).", **where)
    precision.define_flag(where["flag_values"], extra_help=" Of the generator's compute "
                          "(checkpoints only; a SavedModel keeps the mode it was exported in).")
    flags.DEFINE_string("video", None, "Age the faces of this video instead of images: one "
                        "video per target (SAVE_DIR/NAME_group4_51+.mp4 ...), same frame rate "
                        "and size, no audio; faces detected in every frame (--all_faces, "
                        "--face_margin apply), boxes smoothed over time.", **where)
    flags.DEFINE_float("box_smoothing", video.DEFAULT_SMOOTHING, "With --video: how much of "
                       "the detector's frame-to-frame jitter the face box filter removes, 0 "
                       "(raw detections) to 0.95.", lower_bound=0.0, upper_bound=0.95, **where)


#: Exit status when nothing could run (no weights, bad flags); 1 = some input failed.
EXIT_SETUP_ERROR = 2


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_SETUP_ERROR)


@dataclasses.dataclass
class Job:
    """What test.py runs with one loaded model, whatever the model: the registry's ``age``
    role of each model builds one from the flags (:func:`ipcgan_job`, :func:`cyclegan_job`).

    Attributes:
      columns: one per output, each with a ``label`` (contact sheet) and a ``tag`` (file
        names): IPCGAN's age targets, CycleGAN's directions.
      render: ``face uint8 [H, W, 3] -> (shown [S, S, 3], outputs [len(columns), S, S, 3])``.
      panel_size: S.
      title: of the contact sheet.
      face_margin: the crop margin of detected faces (None: the data tool's default).
      face_align: level the eyes of detected faces (photos; a video always does).
      crop_line: the line saying how faces are cut (--detect_faces, --video), if any.
    """
    columns: Sequence
    render: Callable
    panel_size: int
    title: str = "Face aging"
    face_margin: Optional[float] = None
    face_align: bool = True
    crop_line: Optional[str] = None


def _weights(F, default_dir):
    """The keyword arguments of a loader: the SavedModel, or the checkpoint (``default_dir``
    unless --checkpoint_dir is given)."""
    if F.saved_model and F["checkpoint_dir"].present:
        _fail("give --checkpoint_dir or --saved_model, not both")
    if F.saved_model:
        return dict(saved_model=F.saved_model)
    return dict(checkpoint_dir=F.checkpoint_dir if F["checkpoint_dir"].present else default_dir,
                model_index=F.model_index)


def _reason(error) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _reference_faces(F):
    """--bn_mode=batch: the reference faces; exits (2) with one line when there are none."""
    try:
        references = read_reference_faces(F.train_data_dir, F.batch_size - 1)
    except FileNotFoundError as e:
        _fail(f"--bn_mode=batch needs reference faces: {e}")
    if not references:
        _fail(f"--bn_mode=batch needs reference faces: {F.train_data_dir} has no readable image")
    if len(references) < F.batch_size - 1:
        print(f"note: only {len(references)} reference faces in {F.train_data_dir}; "
              f"batches hold {len(references) + 1} faces, not {F.batch_size}")
    return references


def ipcgan_job(F) -> Job:
    """The IPCGAN generator the flags ask for, its targets and (--bn_mode=batch) reference
    faces; exits (status 2) with one line when unusable."""
    source = _weights(F, inference.BUNDLED_CHECKPOINT_DIR)
    try:
        generator = inference.load_generator(**source, image_size=F.image_size,
                                             age_groups=F.age_groups,
                                             mixed_precision=F.mixed_precision)
    except Exception as e:  # noqa: BLE001 -- any loading problem ends the run with one line
        if not F.saved_model and not F["checkpoint_dir"].present \
                and isinstance(e, FileNotFoundError):
            _fail(f"no bundled model is present ({inference.BUNDLED_CHECKPOINT_DIR} holds no "
                  "checkpoint); pass weights with --checkpoint_dir=DIR_OR_PREFIX (a TF2 "
                  "checkpoint or the release's acgan.model-N) or --saved_model=DIR")
        _fail(f"cannot load weights: {_reason(e)}")
    try:
        targets = inference.age_targets([int(g) for g in F.target_groups], generator.age_groups,
                                        F.interpolate, F.group_labels)
    except ValueError as e:
        _fail(e)
    references = _reference_faces(F) if F.bn_mode == "batch" else None
    recorded = inference.generator_face_crop(generator)
    return Job(targets, inference.face_renderer(generator, targets, F.bn_mode, references,
                                                F.batch_size),
               inference.generator_image_size(generator),
               face_margin=recorded.margin if F.face_margin is None else F.face_margin,
               face_align=recorded.align, crop_line=_face_crop_line(recorded, F.face_margin))


def cyclegan_job(F) -> Job:
    """Both CycleGAN generators (young -> old, and old -> young unless --noold_to_young);
    exits (status 2) with one line when there are none."""
    from face_aging.cyclegan import inference as cyclegan_inference

    source = _weights(F, registry.resolve("cyclegan", "default_weights"))
    try:
        model = cyclegan_inference.load_cyclegan(**source, image_size=F.image_size,
                                                 load_old_to_young=F.old_to_young,
                                                 mixed_precision=F.mixed_precision)
    except Exception as e:  # noqa: BLE001 -- any loading problem ends the run with one line
        hint = ""
        if not F.saved_model and not F["checkpoint_dir"].present:
            hint = (" (the default, train_cyclegan.py's; pass --checkpoint_dir=DIR, a "
                    "train_cyclegan.py checkpoint directory, or --saved_model=DIR)")
        _fail(f"cannot load the CycleGAN: {_reason(e)}{hint}")
    columns = cyclegan_inference.directions(model.old_to_young is not None)
    return Job(columns, cyclegan_inference.face_renderer(model, columns, F.batch_size),
               model.image_size, title="Face aging (CycleGAN)", face_margin=F.face_margin)


def _make_output_folder(F):
    try:
        os.makedirs(F.save_dir, exist_ok=True)
    except OSError as e:
        _fail(f"{F.save_dir}: cannot create the output folder ({e.strerror or e})")


def _check_detector(what):
    from face_aging import faces

    available, reason = faces.detector_status()
    if not available:
        _fail(f"{what} cannot run: {reason}")


def _input_paths_and_output_folder(F):
    try:
        paths = list_image_files(F.test_data_dir)
    except FileNotFoundError as e:
        _fail(e)
    if not paths:
        _fail(f"{F.test_data_dir}: no files to process")
    _make_output_folder(F)
    if F.detect_faces:
        _check_detector("--detect_faces")
    return paths


def _main_video(F, job):
    """--video: one aged video per target; 0 written, 1 the video could not be read/written."""
    _check_detector("--video")
    _make_output_folder(F)
    stem, extension = os.path.splitext(os.path.basename(F.video.rstrip("/")))
    if extension.lower() not in video.FOURCC_BY_EXTENSION:
        extension = ".mp4"
    paths = [os.path.join(F.save_dir, f"{stem}_{c.tag}{extension}") for c in job.columns]
    try:
        result = video.age_video(F.video, paths, lambda face: job.render(face)[1],
                                 all_faces=F.all_faces, margin=job.face_margin,
                                 smoothing=F.box_smoothing)
    except video.BadVideoError as e:
        print(f"FAILED: {F.video}: {e}")
        return 1
    detail = f" ({'; '.join(result.notes)})" if result.notes else ""
    print(f"ok: {F.video}{detail}: {result.frames} frames, {result.fps:g} fps, "
          f"{result.width}x{result.height}, faces in {result.frames_with_faces} frames")
    if job.crop_line:  # said after the video is read: a video that cannot be read is one line
        print(job.crop_line)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _face_crop_line(recorded, face_margin):
    """The line saying how --detect_faces cuts faces, and where that comes from."""
    if face_margin is not None:
        return f"--detect_faces: crop margin {face_margin:g} (--face_margin)"
    if recorded.recorded_in:
        return (f"--detect_faces: crop margin {recorded.margin:g}, as recorded in "
                f"{recorded.recorded_in} (--face_margin overrides it)")
    return (f"--detect_faces: crop margin {recorded.margin:g}, the data tool's default (nothing "
            "is recorded beside the weights; --face_margin sets it)")


def main(argv, flag_values=None):
    """The run the parsed flags ask for (``flag_values``, default absl's FLAGS); returns the exit
    status (0 all processed, 1 some input failed; 2, by ``SystemExit``, nothing could run)."""
    F = flag_values if flag_values is not None else flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        registry.check_model_flags("age", F)
    except FaceAgingError as e:
        _fail(e)
    if F.video and F["test_data_dir"].present:
        _fail("give --video or --test_data_dir, not both")
    job = registry.resolve(F.model, "age")(F)
    if F.video:
        return _main_video(F, job)
    paths = _input_paths_and_output_folder(F)
    if F.detect_faces and job.crop_line:
        print(job.crop_line)
    with progress.bar(len(paths), "test.py", unit="file") as files:
        summary = process_image_files(paths, F.save_dir, job.columns, job.render,
                                      detect_faces=F.detect_faces, all_faces=F.all_faces,
                                      face_margin=job.face_margin, log=files.write,
                                      progress=files, face_align=job.face_align)
    sheet = outputs.write_contact_sheet(
        F.save_dir, summary.strips, ["input"] + [c.label for c in job.columns], summary.failed,
        title=job.title, panel_size=job.panel_size)
    print(f"{len(summary.processed)} of {len(paths)} file(s) processed, "
          f"{len(summary.failed)} failed; contact sheet {sheet}")
    return 1 if summary.failed else 0


def run() -> None:
    """The command (``python test.py``, ``face-aging-test``): flags on absl's FLAGS, parsed,
    then :func:`main`."""
    cli.define_key_flags(define_flags)
    cli.run(main, doc=__doc__)


if __name__ == "__main__":
    run()
