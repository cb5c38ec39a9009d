"""The web demo (issue 20): page logic, the real page in headless Chromium, a load test.

The page logic runs on the bundled model in this process. The browser tests start
``python -m face_aging.demo`` as a subprocess on a free loopback port and drive Debian's
Chromium through its chromedriver (selenium): upload a photo, move the slider, read the
result back and compare it with ``ipcgan.inference.age_faces`` on the same face and age
vector. The load test sends 20 concurrent API requests (gradio_client) and checks every answer
and the server's memory.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gradio = pytest.importorskip("gradio")  # the [demo] extra

from conftest import free_ports  # noqa: E402
from face_aging import demo, faces, images  # noqa: E402
from face_aging.ipcgan import inference as ipcgan_inference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DETECTOR = faces.detector_status()[0]
#: The bundled generator's face size (model.json), which the strips are made of; 0 without it.
_MODEL_JSON = os.path.join(ipcgan_inference.BUNDLED_CHECKPOINT_DIR, "model.json")
S = json.load(open(_MODEL_JSON))["image_size"] if os.path.isfile(_MODEL_JSON) else 0
needs_detector = pytest.mark.skipif(not DETECTOR, reason="OpenCV cannot run Haar cascades here")


def photo_path():
    """A real photo with one face (matplotlib's Grace Hopper, public domain, 512x600)."""
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def cache():
    return demo.ModelCache()


@pytest.fixture(scope="module")
def bundled(cache):
    return cache.get("IPCGAN", None)


@pytest.fixture(scope="module")
def generator():
    return ipcgan_inference.load_generator(
        checkpoint_dir=ipcgan_inference.BUNDLED_CHECKPOINT_DIR)


def expected_photo(generator, image, vector, all_faces=False):
    """What the page should show: faces.locate_faces, age_faces, faces.paste_back."""
    photo, aged_faces = image, []
    for face in faces.locate_faces(image, all_faces):
        aged = ipcgan_inference.age_faces(generator, [face.crop], np.asarray(vector)[None])[0]
        photo = faces.paste_back(photo, aged, face.square, face.angle)
        aged_faces.append(aged)
    return photo, aged_faces


def assert_close(got, want, what):
    """Equal up to one level (TF in another process may round a value differently)."""
    assert got.shape == want.shape, (what, got.shape, want.shape)
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01, (what, diff.max(), diff.mean())


# --------------------------------------------------------------------------- page logic


def test_slider_stops_are_the_interpolated_age_vectors(bundled):
    assert bundled.image_size == 128 and bundled.slider_maximum == 4.0
    assert len(bundled.stops) == 41 and bundled.per_unit == 10
    assert bundled.stop_index(2.5) == 25 and bundled.stop_index(9) == 40
    assert bundled.stop_index(-1) == 0 and bundled.stop_index(3.04) == 30
    np.testing.assert_allclose(bundled.stops[25].vector, [0, 0, 0.5, 0.5, 0], atol=1e-6)
    np.testing.assert_array_equal(bundled.stops[30].vector, np.eye(5, dtype=np.float32)[3])
    assert bundled.stops[25].label == "31-40 to 41-50, 50%"
    assert [bundled.stops[i].label for i in bundled.all_ages] == list(
        ipcgan_inference.DEFAULT_GROUP_LABELS)
    assert bundled.slider_label() == ("Age group: 0 = 0-20 · 1 = 21-30 · 2 = 31-40 · "
                                      "3 = 41-50 · 4 = 51+")
    with pytest.raises(demo.DemoError):
        bundled.stop_index(float("nan"))


@needs_detector
def test_age_photo_pastes_faces_aged_like_age_faces(bundled, generator):
    image, _ = images.read_image(photo_path())
    result = demo.age_photo(bundled, image, 2.5, demo.FACES_LARGEST, show_all=False)
    want, aged = expected_photo(generator, image, bundled.stops[25].vector)
    np.testing.assert_array_equal(result.photo, want)
    assert result.strip.shape == (S, 2 * S, 3)  # the face as the model saw it, then its age
    np.testing.assert_array_equal(result.strip[:, S:], aged[0])
    assert "1 face(s) aged to 31-40 to 41-50, 50%" in result.message
    every = demo.age_photo(bundled, image, 4, demo.FACES_EVERY, show_all=True)
    assert every.strip.shape == (S * len(faces.locate_faces(image, True)),
                                 S * 6, 3)  # input + the five groups
    crop = faces.locate_faces(image)[0].crop
    groups = ipcgan_inference.age_faces(generator, [crop] * 5, np.eye(5, dtype=np.float32))
    for g in range(5):
        np.testing.assert_array_equal(every.strip[:S, S * (g + 1):S * (g + 2)], groups[g])
    whole = demo.age_photo(bundled, image, 1, demo.FACES_WHOLE)
    assert whole.photo.shape == image.shape
    np.testing.assert_array_equal(whole.strip[:, S:],
                                  ipcgan_inference.age_faces(generator, [image], 1)[0])


def test_bad_uploads_are_one_line(tmp_path, bundled):
    (tmp_path / "notes.jpg").write_text("not an image\n")
    with pytest.raises(demo.DemoError, match=r"^notes.jpg: not an image"):
        demo.read_upload(str(tmp_path / "notes.jpg"))
    Image.new("RGB", (3000, 2000), (90, 90, 90)).save(tmp_path / "big.png")
    with pytest.raises(demo.DemoError, match=r"big.png is too large: 3000x2000 is 6.0 megapixels"):
        demo.read_upload(str(tmp_path / "big.png"), max_megapixels=5)
    image, notes = demo.read_upload(str(tmp_path / "big.png"), max_megapixels=6)
    assert image.shape == (2000, 3000, 3) and not notes
    good = tmp_path / "good.jpg"
    Image.fromarray(np.full((80, 80, 3), 120, np.uint8)).save(good)
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:200])
    with pytest.raises(demo.DemoError, match=r"^cut.jpg: (truncated|corrupt)"):
        demo.read_upload(str(tmp_path / "cut.jpg"))
    if DETECTOR:
        with pytest.raises(demo.DemoError, match=r"^no face found in this photo"):
            demo.age_photo(bundled, np.full((200, 200, 3), 128, np.uint8), 2)
    with pytest.raises(demo.DemoError, match="unknown faces choice"):
        demo.age_photo(bundled, np.full((64, 64, 3), 128, np.uint8), 2, "some faces")


def write_cyclegan_run(folder, seed=0):
    """Random CycleGAN generators (32 px) as a train_cyclegan.py checkpoint folder."""
    import tensorflow as tf

    from face_aging.cyclegan.networks import ResnetGenerator, build_networks

    tf.keras.utils.set_random_seed(seed)
    g_a, g_b = ResnetGenerator(1, 8, name="g_a"), ResnetGenerator(1, 8, name="g_b")
    build_networks(g_a, g_b)
    tf.train.CheckpointManager(tf.train.Checkpoint(g_a=g_a, g_b=g_b), str(folder),
                               max_to_keep=None).save(checkpoint_number=1)
    (folder / "training_options.json").write_text(
        json.dumps({"crop_size": 32, "n_blocks": 1, "ngf": 8}))
    return g_a, g_b


def test_model_cache_loads_cyclegan_reports_bad_weights_and_evicts(tmp_path):
    g_a, g_b = write_cyclegan_run(tmp_path / "cyc")
    cache = demo.ModelCache(capacity=1)
    model = cache.get("CycleGAN", str(tmp_path / "cyc"))
    assert [s.label for s in model.stops] == ["young \u2192 old", "old \u2192 young"]
    assert model.slider_maximum == 1 and model.default_age == 0.0
    face = np.random.default_rng(0).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    result = demo.age_photo(model, face, 1, demo.FACES_WHOLE, show_all=True)
    from face_aging.cyclegan.inference import translate_faces

    np.testing.assert_array_equal(result.strip[:, 32:64], translate_faces(g_a, [face], 32)[0])
    np.testing.assert_array_equal(result.strip[:, 64:], translate_faces(g_b, [face], 32)[0])
    assert "aged to old \u2192 young" in result.message
    assert cache.get("CycleGAN", str(tmp_path / "cyc")) is model  # cached
    cache.get("IPCGAN", "")  # the bundled model; capacity 1 evicts the CycleGAN
    assert cache.get("CycleGAN", str(tmp_path / "cyc")) is not model
    for kind, weights, words in (("IPCGAN", str(tmp_path / "none"), "none"),
                                 ("CycleGAN", str(tmp_path), "no checkpoint"),
                                 ("GAN", "", "unknown model")):
        with pytest.raises(demo.DemoError) as caught:
            cache.get(kind, weights)
        text = str(caught.value)
        assert words in text and "\n" not in text and f"{weights}: {weights}" not in text, text


# --------------------------------------------------------------------------- the served page


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m face_aging.demo`` on a free loopback port (stopped at the end)."""
    work = tmp_path_factory.mktemp("demo_server")
    port = free_ports(1)[0]  # below the ephemeral range: no other process is handed it
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", GRADIO_TEMP_DIR=str(work / "gradio"),
               PYTHONUNBUFFERED="1")
    log = open(work / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "face_aging.demo", f"--port={port}",
                             "--max_upload_megapixels=2"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            assert proc.poll() is None, (work / "server.log").read_text()[-3000:]
            if f"face aging demo on {url}" in (work / "server.log").read_text():
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the demo did not start in 240 s")
        yield {"url": url, "proc": proc, "work": work}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="face_aging_chromium_")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, condition, timeout=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition())


def _image_src(driver, elem_id):
    from selenium.webdriver.common.by import By

    images = driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
    return images[0].get_attribute("src") if images else None


def _fetch_png(src):
    import io

    with urllib.request.urlopen(src, timeout=30) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB"))


def _message(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "message").text


def _upload(driver, path):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(path)


def _clear_upload(driver):
    from selenium.webdriver.common.by import By

    buttons = driver.find_elements(By.CSS_SELECTOR, "#photo button[aria-label='Clear']")
    if buttons:
        buttons[0].click()
        _wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"),
              30)


@needs_detector
def test_page_in_chromium_upload_slider_result(server, browser, generator, bundled):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(server["url"])
    _wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"), 60)
    assert f"Model: IPCGAN, {S} px faces" in _message(browser)
    _upload(browser, photo_path())
    _wait(browser, lambda: _image_src(browser, "result"))
    first = _image_src(browser, "result")
    assert "aged to 41-50" in _message(browser)  # the slider starts at group 3

    # Move the slider by dragging it: from its middle (2), a quarter of its width left.
    slider = browser.find_element(By.CSS_SELECTOR, "#age input[type=range]")
    ActionChains(browser).click_and_hold(slider).move_by_offset(
        -slider.size["width"] // 8, 0).release().perform()
    value = float(slider.get_attribute("value"))
    assert 1.0 < value < 2.0 and value != 3.0
    _wait(browser, lambda: _image_src(browser, "result") not in (None, first))
    index = bundled.stop_index(value)
    assert bundled.stops[index].label in _message(browser)

    image, _ = images.read_image(photo_path())
    want_photo, aged = expected_photo(generator, image, bundled.stops[index].vector)
    assert_close(_fetch_png(_image_src(browser, "result")), want_photo, "result photo")
    assert_close(_fetch_png(_image_src(browser, "strip"))[:, S:], aged[0], "strip")
    assert browser.find_elements(By.CSS_SELECTOR, "#result button, #result a")  # download

    # Every request the page made stayed on this machine.
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    fetched = [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:"))]
    outside = [u for u in fetched if not u.startswith(server["url"])]
    assert fetched and not outside, outside[:5]


def test_page_in_chromium_says_what_is_wrong_with_bad_uploads(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server["url"])
    _wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"), 60)
    (tmp_path / "letter.png").write_text("Dear reader, this is not a picture.\n")
    Image.new("RGB", (200, 200), (128, 128, 128)).save(tmp_path / "wall.png")
    Image.new("RGB", (2000, 1500), (128, 128, 128)).save(tmp_path / "poster.png")  # 3 MP > 2
    cases = [("letter.png", "letter.png: not an image")]
    if DETECTOR:
        cases.append(("wall.png", "no face found in this photo"))
    cases.append(("poster.png", "poster.png is too large: 2000x1500 is 3.0 megapixels, "
                                "this page takes at most 2"))
    for name, words in cases:
        _clear_upload(browser)
        _upload(browser, str(tmp_path / name))
        _wait(browser, lambda: words in _message(browser), 60)
        text = _message(browser)
        assert text.startswith("Error:") and "Traceback" not in text and len(
            text.splitlines()) == 1, text
        assert _image_src(browser, "result") is None


def test_twenty_concurrent_api_requests_queue_and_all_answer(server, generator, bundled,
                                                              tmp_path):
    """20 requests at once on loopback: all answered correctly, one at a time (the queue's
    concurrency limit 1), the server's memory bounded. Bounded in time: 20 jobs, 600 s."""
    from gradio_client import Client, handle_file

    from gradio_client.utils import Status

    face = tmp_path / "face.png"
    crop = images.read_image(os.path.join(ROOT, "images", "test", "astronaut.jpg"))[0]
    Image.fromarray(crop).save(face)
    client = Client(server["url"], verbose=False, download_files=str(tmp_path / "client"),
                    analytics_enabled=False)
    client.predict(handle_file(str(face)), None, "IPCGAN", "", 0.0, demo.FACES_WHOLE, False,
                   api_name="/age")  # warm: first call traces the generator
    rss_before = _rss_mb(server["proc"].pid)
    ages = [round(0.2 * i, 1) for i in range(20)]  # 0.0 .. 3.8, every one a different vector
    started = time.time()
    jobs = [client.submit(handle_file(str(face)), None, "IPCGAN", "", age, demo.FACES_WHOLE,
                          False, api_name="/age") for age in ages]
    most_waiting = 0
    try:
        while not all(job.done() for job in jobs) and time.time() - started < 600:
            codes = [job.status().code for job in jobs]
            most_waiting = max(most_waiting, codes.count(Status.IN_QUEUE))
            time.sleep(0.02)
        results = [job.result(timeout=max(1.0, 600 - (time.time() - started))) for job in jobs]
    finally:
        for job in jobs:
            job.cancel()
    elapsed = time.time() - started
    rss_after = _rss_mb(server["proc"].pid)
    print(f"20 requests in {elapsed:.1f} s, up to {most_waiting} waiting; server RSS "
          f"{rss_before:.0f} -> {rss_after:.0f} MB")
    assert most_waiting >= 10, most_waiting  # they queued
    # One at a time: the server's request intervals (its log) do not overlap.
    lines = [line for line in (server["work"] / "server.log").read_text().splitlines()
             if line.startswith("request ")]
    intervals = sorted(tuple(float(v) for v in line.split()[1].rstrip(":").split("-"))
                       for line in lines[-20:])
    assert len(intervals) == 20
    overlaps = [(a, b) for a, b in zip(intervals, intervals[1:]) if b[0] < a[1] - 0.002]
    assert not overlaps, overlaps[:3]
    for age, (photo, strip, message) in zip(ages, results):
        index = bundled.stop_index(age)
        assert f"aged to {bundled.stops[index].label}" in message, message
        want = ipcgan_inference.age_faces(generator, [crop], bundled.stops[index].vector[None])[0]
        assert_close(np.asarray(Image.open(strip).convert("RGB"))[:, S:], want, f"age {age}")
        assert np.asarray(Image.open(photo)).shape == crop.shape
    assert rss_after - rss_before < 400, (rss_before, rss_after)
    assert server["proc"].poll() is None  # still serving


def test_page_in_chromium_switches_to_cyclegan_and_its_weights(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from face_aging.cyclegan.inference import translate_faces

    g_a, _ = write_cyclegan_run(tmp_path / "cyc", seed=1)
    browser.get(server["url"])
    _wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#model input[type=radio]"), 60)
    browser.find_element(By.CSS_SELECTOR, "#model input[value='CycleGAN']").click()
    # Its default folder is train_cyclegan.py's, absent here: one line in the page.
    _wait(browser, lambda: "cannot load CycleGAN weights from checkpoints/cyclegan_young2old"
          in _message(browser), 60)
    assert _message(browser).startswith("Error:")
    weights = browser.find_element(By.CSS_SELECTOR, "#weights textarea, #weights input")
    weights.send_keys(Keys.CONTROL, "a")
    weights.send_keys(str(tmp_path / "cyc"), Keys.ENTER)
    _wait(browser, lambda: "Model: CycleGAN, 32 px faces" in _message(browser), 60)
    slider = browser.find_element(By.CSS_SELECTOR, "#age input[type=range]")
    assert slider.get_attribute("max") == "1" and float(slider.get_attribute("value")) == 0
    assert "0 = young \u2192 old" in browser.find_element(By.ID, "age").text
    browser.find_element(By.CSS_SELECTOR, "#faces input[value='whole image is one face']").click()
    face = np.random.default_rng(2).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    Image.fromarray(face).save(tmp_path / "face.png")
    _upload(browser, str(tmp_path / "face.png"))
    _wait(browser, lambda: _image_src(browser, "strip") and "CycleGAN" in _message(browser))
    assert "aged to young \u2192 old" in _message(browser)
    assert_close(_fetch_png(_image_src(browser, "strip"))[:, 32:],
                 translate_faces(g_a, [face], 32)[0], "young to old")


def test_demo_with_missing_weights_stops_with_one_line(tmp_path):
    port = free_ports(1)[0]  # below the ephemeral range: no other process is handed it
    result = subprocess.run([sys.executable, "-m", "face_aging.demo",
                             f"--checkpoint_dir={tmp_path / 'none'}", f"--port={port}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                     GRADIO_TEMP_DIR=str(tmp_path / "gradio")))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot load IPCGAN weights from" in errors[0], result.stderr
    assert str(tmp_path / "none") in errors[0] and "Traceback" not in result.stderr
    assert "face aging demo on" not in result.stdout
