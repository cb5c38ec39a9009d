"""Video (issue 20): the box filter, age_video on clips written here, test.py --video.

Clips are written by the tests themselves (a textured face patch moved across a textured
background). Lossless FFV1 (.mkv) lets frames be compared exactly: outside each pasted face
square the output equals the input bit for bit.
"""
import os
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from face_aging import faces, images, video
from face_aging.ipcgan import inference as ipcgan_inference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_inference import SIZE, random_generator, run_test_script  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH, HEIGHT, FPS, FRAMES = 200, 160, 12.5, 16
FACE = 60


def true_box(t):
    """The face patch's box in frame ``t``: 5 px right and 2 px down a frame."""
    x, y = 20 + 5 * t, 30 + 2 * t
    return (float(x), float(y), float(x + FACE), float(y + FACE))


def make_frames(count=FRAMES):
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.stack([xx * 1.2, yy * 1.5, 128 + 60 * np.sin(xx / 9.0)], -1).astype(np.uint8)
    rng = np.random.default_rng(0)
    patch = rng.integers(40, 220, (FACE, FACE, 3), dtype=np.uint8)
    frames = []
    for t in range(count):
        frame = background.copy()
        x1, y1 = (int(v) for v in true_box(t)[:2])
        frame[y1:y1 + FACE, x1:x1 + FACE] = patch
        frames.append(frame)
    return frames


def write_clip(path, frames, fps=FPS, fourcc=None):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*(fourcc or video.fourcc_for(
        str(path)))), fps, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def read_clip(path):
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames, fps


def jittered_detections(count=FRAMES, jitter=3.0, missing=(8, 9), seed=1):
    """What a detector might say: the true box moved by up to ``jitter`` px, none in
    ``missing`` frames."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(count):
        if t in missing:
            out.append([])
            continue
        dx, dy, ds = rng.uniform(-jitter, jitter, 3)
        x1, y1, x2, y2 = true_box(t)
        out.append([(x1 + dx - ds, y1 + dy - ds, x2 + dx + ds, y2 + dy + ds)])
    return out


def fake_detector(monkeypatch, per_frame):
    calls = iter(per_frame)
    monkeypatch.setattr(faces, "detector_status", lambda: (True, ""))
    monkeypatch.setattr(faces, "detect_faces", lambda image, **kw: list(next(calls)))
    monkeypatch.setattr(faces, "find_eyes", lambda image, box: None)


def centres(boxes):
    return np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes])


def roughness(points):
    """Mean size of the second difference (px/frame^2): 0 on a straight, steady path."""
    return float(np.linalg.norm(np.diff(points, n=2, axis=0), axis=1).mean())


@pytest.fixture(scope="module")
def generator():
    return random_generator()


# --------------------------------------------------------------------------- the box filter


def test_tracker_damps_jitter_without_lagging_steady_motion():
    detections = jittered_detections(40, jitter=4.0, missing=())
    tracker = video.FaceTracker(smoothing=0.6)
    smoothed = [tracker.update([(d[0], None)])[0][1] for d in detections]
    raw, path = centres([d[0] for d in detections]), centres(smoothed)
    truth = centres([true_box(t) for t in range(40)])
    assert roughness(path) < roughness(raw) / 3
    # No lag on constant speed (an exponential average would trail by ~1.5 frames, 8 px).
    lag = np.linalg.norm(path[10:] - truth[10:], axis=1).mean()
    assert lag < np.linalg.norm(raw[10:] - truth[10:], axis=1).mean()
    assert lag < 2.5, lag
    # smoothing=0: the detections as they are.
    raw_tracker = video.FaceTracker(smoothing=0.0)
    for d in detections[:5]:
        np.testing.assert_allclose(raw_tracker.update([(d[0], 10.0)])[0][1], d[0], atol=1e-9)
    with pytest.raises(ValueError):
        video.FaceTracker(smoothing=1.0)


def test_tracker_holds_a_missed_face_then_drops_it_and_follows_a_jump():
    tracker = video.FaceTracker(smoothing=0.5, max_missing=2)
    box = (10.0, 10.0, 50.0, 50.0)
    (first_id, first_box, _), = tracker.update([(box, 4.0)])
    held = [tracker.update([]) for _ in range(3)]
    assert [len(h) for h in held] == [1, 1, 0]  # two frames held, then gone
    assert held[0][0][1] == pytest.approx(first_box) and held[0][0][0] == first_id  # no speed yet
    moving = video.FaceTracker(smoothing=0.0, max_missing=1)
    for x in (0.0, 4.0):
        moving.update([((x, 0.0, x + 40, 40.0), None)])
    assert moving.update([])[0][1] == pytest.approx((8.0, 0.0, 48.0, 40.0))  # coasts on
    (again_id, _, angle), = tracker.update([(box, None)])
    assert again_id != first_id and angle == 0.0  # a new track; no eye angle known
    far = (150.0, 100.0, 190.0, 140.0)
    (jump_id, jump_box, _), = tracker.update([(far, None)])  # one face: it jumped there
    assert jump_id != again_id and jump_box == pytest.approx(far)
    # Every face: two tracks kept apart, ids stable.
    both = video.FaceTracker(all_faces=True)
    a, b = (10.0, 10.0, 50.0, 50.0), (120.0, 20.0, 170.0, 70.0)
    ids = [t[0] for t in both.update([(b, None), (a, None)])]
    shifted = [(b[0] + 2, b[1], b[2] + 2, b[3]), (a[0] + 1, a[1] + 1, a[2] + 1, a[3] + 1)]
    assert [t[0] for t in both.update([(s, None) for s in reversed(shifted)])] == ids


# --------------------------------------------------------------------------- age_video


def test_age_video_pastes_aged_faces_and_keeps_the_rest(tmp_path, monkeypatch, generator, capsys):
    frames = make_frames()
    clip = write_clip(tmp_path / "clip.mkv", frames)
    detections = jittered_detections()
    fake_detector(monkeypatch, detections)
    targets = ipcgan_inference.age_targets([1, 4])
    render = ipcgan_inference.face_renderer(generator, targets)
    paths = [str(tmp_path / "out_1.mkv"), str(tmp_path / "out_4.mkv")]
    result = video.age_video(clip, paths, lambda face: render(face)[1], progress=True)
    bar = capsys.readouterr().err
    assert f"{FRAMES}/{FRAMES}" in bar and "frame/s" in bar  # tqdm: count, rate
    assert (result.frames, result.fps, result.width, result.height) == (FRAMES, FPS, WIDTH, HEIGHT)
    assert result.frames_with_faces == FRAMES  # frames 8, 9: the face carried on unseen
    assert sorted(os.listdir(tmp_path)) == ["clip.mkv", "out_1.mkv", "out_4.mkv"]  # no temporaries

    # The path pasted is smoother than the detections and close to the truth.
    pasted = [b[0][1] for b in result.boxes]
    seen = [t for t in range(FRAMES) if detections[t]]
    assert roughness(centres(pasted)[seen]) < roughness(centres([detections[t][0] for t in seen]))
    truth = centres([true_box(t) for t in range(FRAMES)])
    assert np.linalg.norm(centres(pasted)[seen] - truth[seen], axis=1).max() < 8

    # Frame by frame: the aged face in its square, every other pixel as it was.
    # Both targets go through the generator as one batch of two, as the video tool sends them:
    # on some CPUs oneDNN picks another kernel for another batch size (last-bit differences).
    vectors = np.stack([target.vector for target in targets])
    for k, path in enumerate(paths):
        written, fps = read_clip(path)
        assert len(written) == FRAMES and fps == FPS and written[0].shape == (HEIGHT, WIDTH, 3)
        for t, (got, frame) in enumerate(zip(written, frames)):
            box = pasted[t]
            crop = faces.crop_with_margin(frame, box, faces.DEFAULT_MARGIN)
            aged = ipcgan_inference.age_faces(generator, [crop, crop], vectors)[k]
            square = faces.square_with_margin(box, faces.DEFAULT_MARGIN)
            want = faces.paste_back(frame, aged, square)
            np.testing.assert_array_equal(got, want)
            inside = np.zeros((HEIGHT, WIDTH), bool)
            x1, y1, x2, y2 = square
            inside[max(y1, 0):y2, max(x1, 0):x2] = True
            assert np.array_equal(got[~inside], frame[~inside])
            assert np.abs(got[inside].astype(int) - frame[inside].astype(int)).mean() > 10
    first, _ = read_clip(paths[0])
    second, _ = read_clip(paths[1])
    assert np.abs(first[3].astype(int) - second[3].astype(int)).mean() > 1  # two different ages


def test_age_video_without_faces_copies_every_frame_and_stays_quiet(tmp_path, monkeypatch,
                                                                    capsys):
    frames = make_frames(5)
    clip = write_clip(tmp_path / "clip.mkv", frames, fps=30.0)
    fake_detector(monkeypatch, [[]] * 5)
    out = str(tmp_path / "out.mkv")
    result = video.age_video(clip, [out], lambda face: pytest.fail("no face to render"))
    assert result.frames == 5 and result.frames_with_faces == 0 and result.fps == 30.0
    written, _ = read_clip(out)
    np.testing.assert_array_equal(np.stack(written), np.stack(frames))
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: no progress bar


@pytest.mark.skipif(not faces.detector_status()[0], reason="OpenCV cannot run Haar cascades here")
def test_real_detector_on_a_moving_photo(tmp_path, generator):
    photo, _ = images.read_image(os.path.join(ROOT, "images", "test", "astronaut.jpg"))
    face = cv2.resize(photo, (160, 160), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(10):
        frame = np.full((240, 320, 3), (60, 60, 90), np.uint8)
        frame[20 + 2 * t:180 + 2 * t, 10 + 6 * t:170 + 6 * t] = face
        frames.append(frame)
    clip = write_clip(tmp_path / "photo.mkv", frames, fps=10.0)
    render = ipcgan_inference.face_renderer(generator, ipcgan_inference.age_targets([3]))
    result = video.age_video(clip, [str(tmp_path / "out.mkv")], lambda f: render(f)[1])
    assert result.frames == 10 and result.frames_with_faces == 10
    assert all(len(d) >= 1 for d in result.detections)
    path = centres([b[0][1] for b in result.boxes])
    truth = np.array([(90 + 6 * t, 100 + 2 * t) for t in range(10)], float)
    assert np.linalg.norm(path - truth, axis=1).max() < 20  # on her face
    assert roughness(path) <= roughness(centres([d[0] for d in result.detections])) + 0.5
    written, _ = read_clip(tmp_path / "out.mkv")
    assert np.abs(written[5].astype(int) - frames[5].astype(int)).max() > 30
    assert np.array_equal(written[5][:, 300:], frames[5][:, 300:])  # far from the face


# --------------------------------------------------------------------------- test.py --video


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory, generator):
    directory = str(tmp_path_factory.mktemp("ckpt"))
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), directory,
                               max_to_keep=None).save(checkpoint_number=1)
    return directory


def test_script_writes_one_mp4_per_target_at_the_input_rate_and_size(tmp_path, monkeypatch,
                                                                      checkpoint_dir, capsys):
    frames = make_frames(8)
    clip = write_clip(tmp_path / "walk.mp4", frames, fps=24.0)
    fake_detector(monkeypatch, jittered_detections(8, missing=()))
    status = run_test_script([f"--checkpoint_dir={checkpoint_dir}", f"--video={clip}",
                              f"--image_size={SIZE}", "--target_groups=0,3",
                              f"--save_dir={tmp_path / 'out'}"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "8 frames, 24 fps, 200x160, faces in 8 frames" in out
    assert sorted(os.listdir(tmp_path / "out")) == ["walk_group0_0-20.mp4", "walk_group3_41-50.mp4"]
    for name in os.listdir(tmp_path / "out"):
        written, fps = read_clip(tmp_path / "out" / name)
        assert len(written) == 8 and fps == 24.0 and written[0].shape == (HEIGHT, WIDTH, 3)
        far = np.s_[:, 150:]  # right of every face square: only the codec's loss
        assert np.abs(written[0][far].astype(int) - frames[0][far].astype(int)).mean() < 6


def test_script_unreadable_videos_are_one_line_each(tmp_path, monkeypatch, checkpoint_dir, capsys):
    monkeypatch.setattr(faces, "detector_status", lambda: (True, ""))
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases = {"notes.mp4": "not a video OpenCV can read", "empty.mp4": "empty file",
             "missing.mp4": "no such file"}
    for name, reason in cases.items():
        save_dir = tmp_path / f"out_{name}"
        status = run_test_script([f"--checkpoint_dir={checkpoint_dir}",
                                  f"--video={tmp_path / name}", f"--image_size={SIZE}",
                                  f"--save_dir={save_dir}"])
        lines = capsys.readouterr().out.strip().splitlines()
        assert status == 1 and len(lines) == 1, lines
        assert lines[0].startswith(f"FAILED: {tmp_path / name}: ") and reason in lines[0]
        assert os.listdir(save_dir) == []  # nothing written, no temporary left
    assert run_test_script([f"--checkpoint_dir={checkpoint_dir}", f"--video={tmp_path / 'x'}",
                            f"--test_data_dir={tmp_path}"]) == 2
    assert "not both" in capsys.readouterr().err
