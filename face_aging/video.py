"""Age the faces of a video: detection on every frame, boxes smoothed over time, paste-back.

``test.py --video=IN.mp4 --target_groups=...`` runs :func:`age_video`; it is model-independent
(IPCGAN and CycleGAN give it their ``render``). For every frame:

1. faces are found with ``face_aging.faces`` (Haar cascade; eyes for the roll angle), as
   ``test.py --detect_faces`` finds them in photos;
2. each face's box and angle are smoothed over time by a :class:`FaceTracker` (an alpha-beta
   filter: no lag on steady motion, detector jitter damped), so the aged face does not jitter;
   a face missed for up to ``max_missing`` frames moves on at its last speed;
3. the face is cropped at the smoothed box exactly as training crops were cut
   (``faces.locate_faces`` with the tracked boxes), aged (``render``), and blended back with
   the soft edge of ``faces.paste_back``: pixels outside the crop square are left as they were.

Outputs: one video per target, the input's frame rate and size, every frame written (frames
without a face unchanged), no audio (OpenCV writes none). Codec by the output's extension
(:data:`FOURCC_BY_EXTENSION`: ``.mp4`` mp4v, ``.avi`` MJPG, ``.mkv`` FFV1 lossless). Each
file is written under a temporary name in its folder (``face_aging.files``) and renamed at the
end, so an interrupted run leaves no half-written video under a final name. Boxes are
``(x1, y1, x2, y2)`` frame pixels; angles degrees (``faces``' conventions).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from face_aging import faces, files
from face_aging.errors import InputError
from face_aging.progress import bar as progress_bar

#: Fraction of the detector's jitter the box filter suppresses, 0 (raw detections) .. <1.
DEFAULT_SMOOTHING = 0.6
#: Frames a face may go undetected before its track (and its paste-back) ends.
DEFAULT_MAX_MISSING = 5
#: A detection continues a track when their boxes overlap at least this much (IoU).
MIN_TRACK_IOU = 0.3
#: OpenCV fourcc per output extension; others: mp4v.
FOURCC_BY_EXTENSION = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG",
                       ".mkv": "FFV1"}
#: Frame rate written when the input does not say (frames per second).
FALLBACK_FPS = 25.0

Box = Tuple[float, float, float, float]


class BadVideoError(InputError):
    """A video that cannot be read or written; the message is the reason (one line)."""


@dataclasses.dataclass
class VideoInfo:
    """What OpenCV reports of a video: ``frame_count`` (0 if unknown), ``fps`` (frames per
    second; 0 if unknown), ``width`` and ``height`` in pixels."""
    frame_count: int
    fps: float
    width: int
    height: int


@dataclasses.dataclass
class VideoResult:
    """What :func:`age_video` did.

    Attributes:
      frames: frames read and written (each output has this many).
      fps: frame rate written.
      width, height: frame size in pixels (input = output).
      frames_with_faces: frames in which at least one face was pasted.
      boxes: per frame, the smoothed boxes pasted (``[(track_id, box, angle)]``).
      detections: per frame, the detector's raw boxes (largest first).
      outputs: the video files written, one per target.
      notes: short phrases about the input (unknown frame rate, fewer frames than announced).
    """
    frames: int
    fps: float
    width: int
    height: int
    frames_with_faces: int
    boxes: List[List[Tuple[int, Box, float]]]
    detections: List[List[Box]]
    outputs: List[str]
    notes: List[str]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (0..1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class _Track:
    """One face over time: centre x, centre y, side as an alpha-beta filter state."""

    def __init__(self, track_id: int, box: Box, angle: float):
        self.id = track_id
        self.state = np.array(_centre_side(box), np.float64)
        self.velocity = np.zeros(3)
        self.angle = float(angle)
        self.missing = 0

    def box(self) -> Box:
        cx, cy, side = self.state
        return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def _centre_side(box: Sequence[float]) -> Tuple[float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)


class FaceTracker:
    """Smooths face boxes over frames and keeps faces apart (greedy IoU matching).

    Per track, centre and side follow an alpha-beta filter with ``alpha = 1 - smoothing`` and
    Benedict-Bordner's ``beta = alpha**2 / (2 - alpha)``: a face moving at constant speed is
    followed without lag, frame-to-frame jitter of the detector is damped. The roll angle is
    smoothed exponentially with the same ``alpha`` (an eye pair not found keeps the angle).

    Args:
      smoothing: 0 (boxes = detections) .. < 1 (heavier smoothing, slower to follow).
      max_missing: frames a track survives without a matching detection (its box moves on at
        the track's last velocity).
      all_faces: track every face; else only the largest detection, one track (a jump to a
        face elsewhere starts it anew).
    """

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING,
                 max_missing: int = DEFAULT_MAX_MISSING, all_faces: bool = False,
                 min_iou: float = MIN_TRACK_IOU):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"box smoothing must be in [0, 1), got {smoothing}")
        if max_missing < 0:
            raise ValueError(f"max_missing must be >= 0, got {max_missing}")
        self.alpha = 1.0 - smoothing
        self.beta = self.alpha ** 2 / (2.0 - self.alpha)
        self.max_missing = max_missing
        self.all_faces = all_faces
        self.min_iou = min_iou
        self.tracks: List[_Track] = []
        self._next_id = 0

    def _new_track(self, box, angle) -> _Track:
        track = _Track(self._next_id, box, angle if angle is not None else 0.0)
        self._next_id += 1
        return track

    def _correct(self, track: _Track, box, angle) -> None:
        predicted = track.state + track.velocity
        residual = np.array(_centre_side(box)) - predicted
        track.state = predicted + self.alpha * residual
        track.velocity = track.velocity + self.beta * residual
        if angle is not None:
            track.angle += self.alpha * (float(angle) - track.angle)
        track.missing = 0

    def update(self, detections: Sequence[Tuple[Box, Optional[float]]]
               ) -> List[Tuple[int, Box, float]]:
        """One frame's detections ``[(box, angle or None)]``, largest first -> the faces to
        paste in this frame ``[(track_id, smoothed box, smoothed angle)]`` by track id."""
        if not self.all_faces:
            detections = list(detections)[:1]
        unmatched = list(self.tracks)
        updated = []
        for box, angle in detections:
            best = max(unmatched, key=lambda t: box_iou(t.box(), box), default=None)
            if best is not None and box_iou(best.box(), box) >= self.min_iou:
                unmatched.remove(best)
                self._correct(best, box, angle)
                updated.append(best)
            else:
                updated.append(self._new_track(box, angle))
        if not self.all_faces and detections and updated[0] not in self.tracks:
            unmatched = []  # the one face moved elsewhere: the old track ends at once
        for track in unmatched:
            track.missing += 1
            track.state = track.state + track.velocity  # coast: the face moves on unseen
            if track.missing <= self.max_missing:
                updated.append(track)
        self.tracks = sorted(updated, key=lambda t: t.id)
        return [(t.id, t.box(), t.angle) for t in self.tracks]


# --------------------------------------------------------------------------- files


def probe_video(path: str) -> VideoInfo:
    """Frame count, rate and size of a video file.

    Raises:
      BadVideoError: missing, a directory, or not a video OpenCV can decode (one line).
    """
    if os.path.isdir(path):
        raise BadVideoError("is a directory")
    if not os.path.exists(path):
        raise BadVideoError("no such file")
    if not os.access(path, os.R_OK):
        raise BadVideoError("unreadable (permission denied)")
    if os.path.getsize(path) == 0:
        raise BadVideoError("empty file (0 bytes)")
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise BadVideoError("not a video OpenCV can read (unknown format or corrupt)")
        ok, frame = capture.read()
        if not ok or frame is None:
            raise BadVideoError("no frame could be decoded (corrupt or empty video)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        return VideoInfo(int(count) if math.isfinite(count) and count > 0 else 0,
                         float(fps) if math.isfinite(fps) and fps > 0 else 0.0,
                         int(frame.shape[1]), int(frame.shape[0]))
    finally:
        capture.release()


def fourcc_for(path: str) -> str:
    """The codec written for an output path (:data:`FOURCC_BY_EXTENSION`)."""
    return FOURCC_BY_EXTENSION.get(os.path.splitext(path)[1].lower(), "mp4v")


def _open_writer(stack: contextlib.ExitStack, final_path: str, fps: float, width: int,
                 height: int, fourcc: Optional[str]):
    """A ``cv2.VideoWriter`` into a ``files.atomic_path`` temporary of ``final_path`` (renamed
    over it when ``stack`` closes cleanly, removed on an error); released before that."""
    extension = os.path.splitext(final_path)[1]
    # The temporary name keeps the extension: OpenCV picks the container from it.
    temporary = stack.enter_context(files.atomic_path(final_path, suffix=extension))
    code = fourcc or fourcc_for(final_path)
    writer = cv2.VideoWriter(temporary, cv2.VideoWriter_fourcc(*code), fps, (width, height))
    stack.callback(writer.release)  # runs before the rename (last in, first out)
    if not writer.isOpened():
        raise BadVideoError(f"{final_path}: OpenCV cannot write {code!r} video into a "
                            f"{extension or 'extensionless'} file")
    return writer


def age_video(input_path: str, output_paths: Sequence[str],
              render: Callable[[np.ndarray], np.ndarray], all_faces: bool = False,
              margin: Optional[float] = None, smoothing: float = DEFAULT_SMOOTHING,
              max_missing: int = DEFAULT_MAX_MISSING, align: bool = True,
              fourcc: Optional[str] = None, progress: Optional[bool] = None) -> VideoResult:
    """Ages the faces of ``input_path`` and writes one video per target.

    Args:
      output_paths: one file per target, in the order of ``render``'s outputs.
      render: ``face crop uint8 RGB [H, W, 3] -> uint8 RGB [len(output_paths), S, S, 3]``,
        the face aged to each target (e.g. ``inference.face_renderer(...)`` minus the shown
        input).
      all_faces: every face of each frame; else the largest.
      margin: crop margin per side, fraction of the box (default ``faces.DEFAULT_MARGIN``).
      smoothing, max_missing: of the :class:`FaceTracker`.
      align: level the eyes (the angle is smoothed too); False crops upright.
      fourcc: OpenCV codec (default by extension, :func:`fourcc_for`).
      progress: a bar (``face_aging.progress.bar``) on stderr with frames/s and ETA; None: only when stderr is a
        terminal.
    Raises:
      BadVideoError: the input cannot be read or an output cannot be written (one line);
        no output file is left behind.
      faces.FaceDetectionUnavailable: this OpenCV cannot detect faces.
    """
    if not output_paths:
        raise ValueError("no output video to write")
    margin = faces.DEFAULT_MARGIN if margin is None else margin
    info = probe_video(input_path)
    notes = []
    fps = info.fps
    if not fps:
        fps = FALLBACK_FPS
        notes.append(f"frame rate unknown, written at {FALLBACK_FPS:g} fps")
    tracker = FaceTracker(smoothing, max_missing, all_faces)
    result = VideoResult(0, fps, info.width, info.height, 0, [], [], list(output_paths), notes)
    capture = cv2.VideoCapture(input_path)
    bar = progress_bar(info.frame_count or None, os.path.basename(input_path), unit="frame",
                       enabled=progress)
    try:
        with contextlib.ExitStack() as stack:  # every output renamed into place, or removed
            writers = [_open_writer(stack, path, fps, info.width, info.height, fourcc)
                       for path in output_paths]
            while True:
                ok, frame_bgr = capture.read()
                if not ok or frame_bgr is None:
                    break
                _age_frame(frame_bgr, info, result, tracker, writers, render, all_faces,
                           margin, align)
                bar.update(1)
    finally:
        bar.close()
        capture.release()
    if info.frame_count and result.frames != info.frame_count:
        notes.append(f"{result.frames} frames decoded, the file announced {info.frame_count}")
    return result


def _age_frame(frame_bgr: np.ndarray, info: VideoInfo, result: VideoResult,
               tracker: FaceTracker, writers, render, all_faces: bool, margin: float,
               align: bool) -> None:
    """One frame of :func:`age_video`: detect, track, age, paste, write to every output."""
    if frame_bgr.shape[:2] != (info.height, info.width):
        raise BadVideoError(f"frame {result.frames} is {frame_bgr.shape[1]}x"
                            f"{frame_bgr.shape[0]}, the video {info.width}x{info.height}")
    frame = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
    boxes = faces.detect_faces(frame)
    tracked = tracker.update([(box, faces.level_angle(frame, box) if align else None)
                              for box in (boxes if all_faces else boxes[:1])])
    located = faces.locate_faces(frame, margin=margin, boxes=[box for _, box, _ in tracked],
                                 angles=[angle if align else 0.0 for _, _, angle in tracked])
    pasted = [frame] * len(writers)
    for face in located:
        aged = render(face.crop)
        pasted = [faces.paste_back(image, out, face.square, face.angle)
                  for image, out in zip(pasted, aged)]
    for writer, image in zip(writers, pasted):
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    result.frames += 1
    result.frames_with_faces += bool(tracked)
    result.boxes.append(tracked)
    result.detections.append(list(boxes))
