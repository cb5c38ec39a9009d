"""face_aging.images: the one reader (Pillow) and its TensorFlow twin, one policy: RGB uint8,
transparency on white, EXIF applied, 16-bit scaled, one line naming the file when it fails."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from face_aging import images
from face_aging.errors import FaceAgingError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def encode(array, fmt, mode=None, **save):
    buffer = io.BytesIO()
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def write_bad_and_odd_inputs(folder):
    """Every input case of the brief; returns {file name: expected outcome substring}."""
    import cv2

    rng = np.random.default_rng(11)
    rgb = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    os.makedirs(folder, exist_ok=True)
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    with open(p("good.png"), "wb") as f:
        f.write(encode(rgb, "PNG"))
    jpeg = encode(rgb, "JPEG")
    with open(p("truncated.jpg"), "wb") as f:
        f.write(jpeg[:len(jpeg) // 2])
    open(p("empty.jpg"), "wb").close()
    with open(p("notes.jpg"), "w") as f:
        f.write("this is not an image\n")
    with open(p("tiny.png"), "wb") as f:
        f.write(encode(rgb[:8, :8], "PNG"))
    os.symlink(p("does-not-exist.jpg"), p("unreadable.jpg"))
    with open(p("grey.png"), "wb") as f:
        f.write(encode(rgb[..., 0], "PNG"))
    sixteen = np.minimum(rgb.astype(np.uint32) * 257 + 100, 65535).astype(np.uint16)
    cv2.imwrite(p("grey16.png"), sixteen[..., 0])
    cv2.imwrite(p("rgb16.png"), np.ascontiguousarray(sixteen[..., ::-1]))
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 128, np.uint8)], 2)
    with open(p("rgba.png"), "wb") as f:
        f.write(encode(rgba, "PNG"))
    with open(p("cmyk.jpg"), "wb") as f:
        f.write(encode(rgb, "JPEG", "CMYK"))
    return rgb, {
        "truncated.jpg": "truncated", "empty.jpg": "empty file", "notes.jpg": "not an image",
        "tiny.png": "too small", "unreadable.jpg": "unreadable",
    }, {"good.png": None, "grey.png": "grayscale", "grey16.png": "16-bit grayscale",
        "rgb16.png": "16-bit RGB", "rgba.png": "transparency", "cmyk.jpg": "CMYK"}


def test_read_image_converts_or_explains(tmp_path):
    rgb, bad, converted = write_bad_and_odd_inputs(str(tmp_path))
    for name, reason in bad.items():
        with pytest.raises(images.BadImageError, match=reason) as e:
            images.read_image(str(tmp_path / name))
        assert str(e.value) == f"{tmp_path / name}: {e.value.reason}"  # one line naming it
        assert "\n" not in str(e.value) and isinstance(e.value, (FaceAgingError, ValueError))
    for name, note in converted.items():
        image, notes = images.read_image(str(tmp_path / name))
        assert image.dtype == np.uint8 and image.shape == rgb.shape, name
        assert (note is None and not notes) or any(note in n for n in notes), (name, notes)
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "good.png"))[0], rgb)
    grey = np.repeat(rgb[..., :1], 3, 2)
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "grey.png"))[0], grey)
    # 16-bit: min(v * 257 + 100, 65535) / 257 rounds to v.
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "grey16.png"))[0], grey)
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "rgb16.png"))[0], rgb)
    on_white = images.read_image(str(tmp_path / "rgba.png"))[0].astype(int)
    assert np.abs(on_white - (rgb.astype(float) * 128 / 255 + 255 * 127 / 255)).max() <= 0.5
    cmyk = images.read_image(str(tmp_path / "cmyk.jpg"))[0].astype(int)
    assert np.abs(cmyk - rgb).mean() < 20  # lossy JPEG, but the same picture


def test_error_kinds_and_note_kinds(tmp_path):
    rgb, _, _ = write_bad_and_odd_inputs(str(tmp_path))
    kinds = {}
    for name in ("absent.jpg", "empty.jpg", "truncated.jpg", "notes.jpg", "tiny.png"):
        with pytest.raises(images.BadImageError) as e:
            images.read_image(str(tmp_path / name))
        kinds[name] = e.value.kind
    assert kinds == {"absent.jpg": "missing_file", "empty.jpg": "empty_file",
                     "truncated.jpg": "truncated_image", "notes.jpg": "unreadable_image",
                     "tiny.png": "too_small"}
    assert [n.kind for n in images.read_image(str(tmp_path / "rgba.png"))[1]] == \
        ["alpha_composited"]
    opaque = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], 2)
    (tmp_path / "opaque.png").write_bytes(encode(opaque, "PNG"))
    image, notes = images.read_image(str(tmp_path / "opaque.png"))
    np.testing.assert_array_equal(image, rgb)
    assert [n.kind for n in notes] == ["alpha_removed"]


def test_read_image_turns_exif_rotated_photos_upright(tmp_path):
    upright = np.zeros((40, 60, 3), np.uint8)
    upright[:, :30] = 255  # left half white
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # the camera stored it turned left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(stored).save(tmp_path / "rotated.png", exif=exif)
    image, notes = images.read_image(str(tmp_path / "rotated.png"))
    assert image.shape == upright.shape and any("EXIF" in n for n in notes)
    np.testing.assert_array_equal(image, upright)
    as_stored, notes = images.read_image(str(tmp_path / "rotated.png"), apply_exif=False)
    np.testing.assert_array_equal(as_stored, stored)
    assert not notes
    assert [n.kind for n in images.probe(str(tmp_path / "rotated.png"))] == ["exif_rotated"]


def test_first_frame_of_an_animation(tmp_path):
    frames = [Image.fromarray(np.full((40, 40, 3), v, np.uint8)) for v in (0, 255)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    image, notes = images.read_image(str(tmp_path / "a.gif"))
    assert image.max() == 0 and [n.kind for n in notes][0] == "first_frame"


def test_tensorflow_twin_follows_the_same_policy(tmp_path):
    import cv2
    import tensorflow as tf

    rgb, _, _ = write_bad_and_odd_inputs(str(tmp_path))
    alpha = np.random.default_rng(3).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    cases = {"good.png": None, "grey.png": None, "grey16.png": None, "rgb16.png": None,
             "rgba.png": None}
    (tmp_path / "rgba_any.png").write_bytes(encode(np.dstack([rgb, alpha]), "PNG"))
    (tmp_path / "la.png").write_bytes(encode(np.dstack([rgb[..., 0], alpha]), "PNG", "LA"))
    (tmp_path / "good.bmp").write_bytes(encode(rgb, "BMP"))
    cv2.imwrite(str(tmp_path / "rgba16.png"), (np.dstack([rgb[..., ::-1], alpha]).astype(
        np.uint16) * 257))
    for name in list(cases) + ["rgba_any.png", "la.png", "good.bmp", "rgba16.png"]:
        expected, _ = images.read_image(str(tmp_path / name))
        decoded = images.decode_tf(tf.io.read_file(str(tmp_path / name))).numpy()
        np.testing.assert_array_equal(decoded, expected, err_msg=name)
    # a JPEG (3 channels) decodes exactly as TF's own 3-channel decoder
    jpeg = tf.constant(encode(rgb, "JPEG"))
    np.testing.assert_array_equal(images.decode_tf(jpeg).numpy(),
                                  tf.io.decode_image(jpeg, channels=3).numpy())
    in_graph = tf.data.Dataset.from_tensor_slices([str(tmp_path / "rgba_any.png")]).map(
        lambda path: images.decode_tf(tf.io.read_file(path)))
    assert next(iter(in_graph)).shape == rgb.shape


def test_probe_checks_the_formats_tensorflow_decodes(tmp_path):
    _, bad, _ = write_bad_and_odd_inputs(str(tmp_path))
    assert images.probe(str(tmp_path / "good.png")) == []
    for name in ("truncated.jpg", "empty.jpg", "notes.jpg"):
        with pytest.raises(images.BadImageError, match=bad[name]):
            images.probe(str(tmp_path / name))
    Image.new("RGB", (8, 8)).save(tmp_path / "a.tif")
    with pytest.raises(images.BadImageError, match="TIFF images are not supported"):
        images.probe(str(tmp_path / "a.tif"))


def test_list_image_files(tmp_path):
    for name in ("b.jpg", "a.PNG", ".hidden.jpg", "notes.txt", "sub/c.jpg", ".dot/d.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    rel = lambda paths: [os.path.relpath(p, tmp_path) for p in paths]  # noqa: E731
    assert rel(images.list_image_files(str(tmp_path))) == ["a.PNG", "b.jpg", "notes.txt"]
    assert rel(images.list_image_files(str(tmp_path), recursive=True,
                                       extensions=images.IMAGE_EXTENSIONS)) == \
        ["a.PNG", "b.jpg", "sub/c.jpg"]
    assert images.list_image_files(str(tmp_path / "b.jpg")) == [str(tmp_path / "b.jpg")]
    with pytest.raises(FileNotFoundError, match="absent: no such file or directory"):
        images.list_image_files(str(tmp_path / "absent"))


def test_bundled_images_are_readable_faces():
    for folder, minimum in (("test", 3), ("train", 31)):
        paths = images.list_image_files(os.path.join(ROOT, "images", folder))
        assert len(paths) >= minimum
        for path in paths:
            image, notes = images.read_image(path)
            assert image.shape[0] == image.shape[1] >= 64 and not notes, path
