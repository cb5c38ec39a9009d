"""``python -m face_aging.demo``: a local web page that ages the faces of a photo (Gradio).

    pip install -e '.[demo]'
    python -m face_aging.demo                      # the bundled IPCGAN, http://127.0.0.1:7860
    python -m face_aging.demo --model=cyclegan --checkpoint_dir=checkpoints/cyclegan_wiki64

The page: upload a photo (any image file ``images.read_image`` reads) or take one with
the webcam; choose IPCGAN or CycleGAN and the weights (a checkpoint folder or an export); an
age slider over the age groups, continuous through the soft age vector (the stops are
``ipcgan.inference.age_targets(..., interpolate=K)``'s blends, a tenth of a group apart), and
a "show all ages" strip; faces found and pasted back into the photo (the largest or every
face), or the whole image taken as one face crop; the result and the strip can be downloaded.

Bad input gets one line in the page (not a traceback): a file that is not an image, a photo
with no face, a photo over ``--max_upload_megapixels``, weights that cannot be loaded.
Requests wait in Gradio's queue and run one at a time (``--concurrency``), so concurrent
users queue instead of running TensorFlow in parallel. The page listens on 127.0.0.1 unless
``--host`` says otherwise, and loads nothing from the internet (analytics off, system fonts).

The API (``gradio_client``): endpoint ``/age``, inputs ``(photo file, webcam image, model,
weights, age, faces, show_all)``, outputs ``(photo, strip, message)``.

The page logic (:class:`ModelCache`, :func:`read_upload`, :func:`age_photo`) does not need
Gradio; :func:`build_demo` wires it to the page. The command (its flags) is
``face_aging.apps.demo``. Pixel conventions are the library's: uint8 RGB in, uint8 RGB out.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from face_aging import registry
from face_aging.errors import InputError

#: Loopback by default: the page is for the person at this machine.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: Largest photo accepted, in megapixels (width x height / 1e6).
DEFAULT_MAX_UPLOAD_MEGAPIXELS = 25.0
#: Requests waiting beyond the running one(s); more are refused by the queue.
DEFAULT_MAX_QUEUE = 64
#: Slider stops between two adjacent groups: 9 gives steps of a tenth of a group.
SLIDER_STEPS_BETWEEN_GROUPS = 9
#: Models loaded at once (each bundled-size IPCGAN is about 8 MB of weights).
MODEL_CACHE_SIZE = 2
#: Uploads above this many bytes are refused by Gradio itself, before decoding.
MAX_FILE_BYTES = 100 * 1024 * 1024

#: The models the page offers, by title (the registry's models with a ``demo`` role).
MODELS = tuple(registry.get(name).title for name in registry.names("demo"))
FACES_LARGEST, FACES_EVERY, FACES_WHOLE = "largest face", "every face", "whole image is one face"
FACE_MODES = (FACES_LARGEST, FACES_EVERY, FACES_WHOLE)


class DemoError(InputError):
    """Something the page says in one line instead of a result (bad upload, no face ...)."""


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """What ``python -m face_aging.demo`` serves (its flags)."""
    model: str = "IPCGAN"
    weights: Optional[str] = None  # None: the model's default (the bundled IPCGAN)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_upload_megapixels: float = DEFAULT_MAX_UPLOAD_MEGAPIXELS
    concurrency: int = 1
    max_queue: int = DEFAULT_MAX_QUEUE
    face_margin: Optional[float] = None


def _model_name(kind: str) -> str:
    """The registry's name of the model titled ``kind`` (``"CycleGAN"`` -> ``"cyclegan"``)."""
    names = [n for n in registry.names("demo") if registry.get(n).title == kind]
    if not names:
        raise DemoError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    return names[0]


def default_weights(model: str) -> str:
    """The weights a model (by title) starts with: the registry's ``default_weights`` (the
    bundled IPCGAN, train_cyclegan.py's folder)."""
    return registry.resolve(_model_name(model), "default_weights")


# --------------------------------------------------------------------------- models


@dataclasses.dataclass
class DemoModel:
    """A loaded model as the page uses it.

    Attributes:
      kind: the model's title (``"IPCGAN"``, ``"CycleGAN"``).
      source: the weights it was loaded from.
      image_size: S, the side of the faces it makes.
      stops: the slider's positions in order (``ipcgan.inference.AgeTarget`` s, or CycleGAN
        directions), each with a ``label``.
      per_unit: slider stops per slider unit (IPCGAN: K + 1 per group; CycleGAN: 1).
      all_ages: indices into ``stops`` of the "show all ages" strip (the pure groups).
      renderer: ``indices -> (face -> (shown [S, S, 3], outputs [len(indices), S, S, 3]))``.
      group_labels: the name of each slider unit (IPCGAN's age groups, CycleGAN's directions).
      slider_name: what a slider unit is (``"Age group"``, ``"Direction"``).
      start: where the slider starts (IPCGAN: group 3, 41-50; CycleGAN: young -> old).
      ages_carry_over: a slider value carries over to other weights of the same model (an
        IPCGAN age does; a CycleGAN direction starts anew).
    """
    kind: str
    source: str
    image_size: int
    stops: list
    per_unit: int
    all_ages: List[int]
    renderer: Callable
    group_labels: Sequence[str] = ()
    slider_name: str = "Age group"
    start: float = 3.0
    ages_carry_over: bool = True

    @property
    def slider_maximum(self) -> float:
        return (len(self.stops) - 1) / self.per_unit

    @property
    def default_age(self) -> float:
        """Where the slider starts (:attr:`start`, within the slider)."""
        return min(self.start, self.slider_maximum)

    def stop_index(self, value: float) -> int:
        """The stop nearest a slider value (clipped to the slider's range)."""
        if value is None or not np.isfinite(float(value)):
            raise DemoError("the age is not a number")
        return int(np.clip(round(float(value) * self.per_unit), 0, len(self.stops) - 1))

    def slider_label(self) -> str:
        return f"{self.slider_name}: " + " · ".join(f"{g} = {name}"
                                                    for g, name in enumerate(self.group_labels))

    def describe(self) -> str:
        return f"{self.kind}, {self.image_size} px faces, weights {_shown_path(self.source)}"


def _shown_path(path: str) -> str:
    """A path as the page shows it: relative to the working folder when inside it."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith("..") else relative


def _source(weights: str) -> dict:
    """A loader's keyword for ``weights``: an export (``saved_model.pb`` inside) or a checkpoint."""
    is_export = os.path.isfile(os.path.join(weights, "saved_model.pb"))
    return {"saved_model": weights} if is_export else {"checkpoint_dir": weights}


def load_ipcgan(weights: str) -> DemoModel:
    """The registry's ``demo`` role of IPCGAN: the generator, a slider over the age groups with
    :data:`SLIDER_STEPS_BETWEEN_GROUPS` blends between them."""
    from face_aging.ipcgan import inference

    generator = inference.load_generator(**_source(weights))
    groups = int(generator.age_groups)
    per_unit = SLIDER_STEPS_BETWEEN_GROUPS + 1
    stops = inference.age_targets(list(range(groups)), groups, SLIDER_STEPS_BETWEEN_GROUPS)
    labels = [stops[g * per_unit].label for g in range(groups)]
    return DemoModel(registry.get("ipcgan").title, weights,
                     inference.generator_image_size(generator), stops, per_unit,
                     [g * per_unit for g in range(groups)],
                     lambda indices: inference.face_renderer(generator,
                                                             [stops[i] for i in indices]),
                     labels)


def load_cyclegan(weights: str) -> DemoModel:
    """The registry's ``demo`` role of CycleGAN: both generators, a slider over the
    directions."""
    from face_aging.cyclegan import inference as cyclegan_inference

    model = cyclegan_inference.load_cyclegan(**_source(weights))
    stops = cyclegan_inference.directions(model.old_to_young is not None)
    return DemoModel(registry.get("cyclegan").title, weights, model.image_size, stops, 1,
                     list(range(len(stops))),
                     lambda indices: cyclegan_inference.face_renderer(
                         model, [stops[i] for i in indices]),
                     [s.label for s in stops], slider_name="Direction", start=0.0,
                     ages_carry_over=False)


class ModelCache:
    """Models by (kind, weights), the ``capacity`` most recently used kept; thread-safe."""

    def __init__(self, capacity: int = MODEL_CACHE_SIZE):
        self.capacity = capacity
        self._models = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, kind: str, weights: Optional[str]) -> DemoModel:
        """The model, loaded on first use.

        Raises:
          DemoError: unknown kind, or weights that cannot be loaded (one line).
        """
        load = registry.resolve(_model_name(kind), "demo")
        weights = (weights or "").strip() or default_weights(kind)
        key = (kind, os.path.abspath(weights))
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            try:
                model = load(weights)
            except Exception as e:  # noqa: BLE001 -- any loading problem is one line in the page
                reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
                if reason.startswith(f"{weights}: "):  # the loaders name the path too
                    reason = reason[len(weights) + 2:]
                raise DemoError(f"cannot load {kind} weights from {weights}: {reason}") from None
            self._models[key] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return model


# --------------------------------------------------------------------------- one request


def read_upload(path: str, max_megapixels: float = DEFAULT_MAX_UPLOAD_MEGAPIXELS
                ) -> Tuple[np.ndarray, List[str]]:
    """An uploaded file -> uint8 RGB ``[H, W, 3]`` and notes (conversions made).

    The size is checked from the header before the pixels are decoded.

    Raises:
      DemoError: not an image, unreadable, or over ``max_megapixels`` (one line naming it).
    """
    from face_aging import images

    name = os.path.basename(path)
    width, height = images.image_size(path) or (0, 0)  # read_image below says what is wrong
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        raise DemoError(f"{name} is too large: {width}x{height} is {megapixels:.1f} megapixels, "
                        f"this page takes at most {max_megapixels:g} (--max_upload_megapixels)")
    try:
        return images.read_image(path)
    except images.BadImageError as e:
        raise DemoError(f"{name}: {e.reason}") from None


@dataclasses.dataclass
class DemoResult:
    """What the page shows: ``photo`` (uint8 RGB, the faces pasted back), ``strip`` (uint8
    RGB, one row per face: the face as the model saw it, then the slider's age or every
    group), and a one-line ``message``."""
    photo: np.ndarray
    strip: np.ndarray
    message: str


def age_photo(model: DemoModel, image: np.ndarray, age: float, faces_mode: str = FACES_LARGEST,
              show_all: bool = False, margin: Optional[float] = None) -> DemoResult:
    """Ages the faces of ``image`` to the slider's ``age`` (and every group for ``show_all``).

    Args:
      image: uint8 RGB ``[H, W, 3]``.
      age: slider value (:meth:`DemoModel.stop_index`).
      faces_mode: :data:`FACE_MODES`: detect and paste back the largest or every face, or take
        the whole image as one face crop (the result is then the aged face at the image's size).
      margin: crop margin of detected faces (default ``faces.DEFAULT_MARGIN``).
    Raises:
      DemoError: no face found, or face detection unavailable here.
    """
    import cv2

    from face_aging import faces, outputs

    if faces_mode not in FACE_MODES:
        raise DemoError(f"unknown faces choice {faces_mode!r}; choose one of "
                        f"{', '.join(FACE_MODES)}")
    index = model.stop_index(age)
    indices = [index] + (model.all_ages if show_all else [])
    render = model.renderer(indices)
    if faces_mode == FACES_WHOLE:
        shown, aged = render(image)
        photo = cv2.resize(aged[0], (image.shape[1], image.shape[0]),
                           interpolation=cv2.INTER_CUBIC)
        rows = [outputs.make_strip(shown, aged[1:] if show_all else aged[:1])]
        count = 1
    else:
        try:
            located = faces.locate_faces(image, faces_mode == FACES_EVERY, margin)
        except faces.FaceDetectionUnavailable as e:
            raise DemoError(f"face detection cannot run here: {e}") from None
        if not located:
            raise DemoError("no face found in this photo (try a larger, frontal face, or "
                            f"'{FACES_WHOLE}' for a face crop)")
        photo, rows = image, []
        for face in located:
            shown, aged = render(face.crop)
            photo = faces.paste_back(photo, aged[0], face.square, face.angle)
            rows.append(outputs.make_strip(shown, aged[1:] if show_all else aged[:1]))
        count = len(located)
    label = model.stops[index].label
    what = "every age group" if show_all else "the strip"
    message = f"{count} face(s) aged to {label} ({model.kind}); {what} below."
    return DemoResult(photo, np.concatenate(rows, axis=0), message)


# --------------------------------------------------------------------------- the page


def _page_message(text: str, error: bool = False) -> str:
    import html

    return f"**{'Error' if error else 'Done'}:** {html.escape(text)}"


def build_demo(config: DemoConfig, cache: Optional[ModelCache] = None,
               log_fn: Callable[[str], None] = None):
    """The Gradio Blocks of the page (not launched). ``cache``: shared models (preloaded);
    ``log_fn``: where each request's one-line record goes (default: stdout, flushed)."""
    import functools

    import gradio as gr

    log_fn = log_fn or (lambda line: print(line, flush=True))
    cache = cache or ModelCache()
    start = cache.get(config.model, config.weights)

    def slider_for(model: DemoModel, value: Optional[float]):
        # An IPCGAN age carries over to other IPCGAN weights; a direction or a switch starts anew.
        if value is None or not model.ages_carry_over \
                or not 0 <= value <= model.slider_maximum:
            value = model.default_age
        return gr.Slider(minimum=0, maximum=model.slider_maximum, step=1 / model.per_unit,
                         value=value, label=model.slider_label())

    def choose_model(kind, weights, age_value, switched):
        weights = default_weights(kind) if switched else weights
        try:
            model = cache.get(kind, weights)
        except DemoError as e:
            return gr.Slider(), weights, _page_message(str(e), error=True)
        return (slider_for(model, None if switched else age_value), weights,
                f"Model: {model.describe()}.")

    with gr.Blocks(title="Face aging", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as demo:
        page = _page_layout(gr, start)
        inputs = [page[k] for k in ("photo_file", "webcam", "kind", "weights", "age", "faces",
                                    "show_all")]
        # One concurrency group for every event that runs TensorFlow (aging, loading weights).
        on_tensorflow = dict(concurrency_limit=config.concurrency, concurrency_id="tensorflow")
        gr.on([page["run"].click, page["photo_file"].upload, page["webcam"].change,
               page["age"].release, page["show_all"].change, page["faces"].change],
              functools.partial(_age_request, cache, config, log_fn), inputs,
              [page["photo_out"], page["strip_out"], page["message"]], api_name="age",
              trigger_mode="always_last", **on_tensorflow)
        model_inputs = [page["kind"], page["weights"], page["age"]]
        model_outputs = [page["age"], page["weights"], page["message"]]
        page["kind"].change(lambda k, w, a: choose_model(k, w, a, True), model_inputs,
                            model_outputs, api_visibility="private", **on_tensorflow)
        page["weights"].submit(lambda k, w, a: choose_model(k, w, a, False), model_inputs,
                               model_outputs, api_visibility="private", **on_tensorflow)
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.max_queue)
    return demo


def _page_layout(gr, start: DemoModel) -> dict:
    """The page's components (inside a ``gr.Blocks`` context), by name."""
    gr.Markdown("# Face aging\nDrop a photo, pick an age. IPCGAN (Wang et al., CVPR 2018) "
                "or CycleGAN young → old; faces are found, aged and pasted back.")
    page = {}
    with gr.Row():
        with gr.Column():
            page["photo_file"] = gr.File(label="Photo (any image file)", type="filepath",
                                         height=120, elem_id="photo")
            page["webcam"] = gr.Image(label="… or take one with the webcam", sources=["webcam"],
                                      type="numpy", height=160, elem_id="webcam")
            page["kind"] = gr.Radio(list(MODELS), value=start.kind, label="Model",
                                    elem_id="model")
            page["weights"] = gr.Textbox(value=_shown_path(start.source),
                                         label="Weights: a checkpoint folder "
                                         "(or an export of python -m face_aging.export)",
                                         elem_id="weights")
            page["age"] = gr.Slider(minimum=0, maximum=start.slider_maximum,
                                    step=1 / start.per_unit, value=start.default_age,
                                    label=start.slider_label(), elem_id="age")
            page["faces"] = gr.Radio(list(FACE_MODES), value=FACES_LARGEST, label="Faces",
                                     elem_id="faces")
            page["show_all"] = gr.Checkbox(value=False, label="Show all ages", elem_id="show_all")
            page["run"] = gr.Button("Age", variant="primary", elem_id="run")
        with gr.Column():
            page["message"] = gr.Markdown(f"Model: {start.describe()}.", elem_id="message")
            page["photo_out"] = gr.Image(label="Result", type="numpy", format="png",
                                         interactive=False, buttons=["download"],
                                         elem_id="result")
            page["strip_out"] = gr.Image(label="Faces: as the model saw them, then the age(s)",
                                         type="numpy", format="png", interactive=False,
                                         height=200, buttons=["download"], elem_id="strip")
    return page


def _age_request(cache: ModelCache, config: DemoConfig, log_fn: Callable[[str], None],
                 photo_file, webcam, kind, weights, age_value, faces_mode, show_all):
    """The page's ``/age`` endpoint: ``(photo, strip, message)``; any failure is one line on the
    page (and a traceback in the log if it is not a :class:`DemoError`)."""
    started = time.time()
    try:
        model = cache.get(kind, weights)
        if photo_file:
            image, notes = read_upload(photo_file, config.max_upload_megapixels)
        elif webcam is not None:
            image, notes = _webcam_image(webcam, config.max_upload_megapixels), []
        else:
            raise DemoError("upload a photo or take one with the webcam")
        result = age_photo(model, image, age_value, faces_mode, bool(show_all),
                           config.face_margin)
    except DemoError as e:
        return None, None, _page_message(str(e), error=True)
    except Exception as e:  # noqa: BLE001 -- the page shows one line, the log the rest
        import traceback

        traceback.print_exc()
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return None, None, _page_message(f"could not age this photo: {reason}", error=True)
    note = f" Input: {'; '.join(notes)}." if notes else ""
    finished = time.time()
    # The server's log: one line a request, with its wall-clock interval (epoch seconds).
    log_fn(f"request {started:.3f}-{finished:.3f}: {result.message.split(';')[0]} in "
           f"{finished - started:.2f} s")
    return result.photo, result.strip, _page_message(result.message + note)


def page_theme():
    """Gradio's default look with the system's fonts (the default theme fetches web fonts)."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def _webcam_image(frame, max_megapixels: float) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise DemoError(f"the webcam image has shape {frame.shape}, not [H, W, 3]")
    megapixels = frame.shape[0] * frame.shape[1] / 1e6
    if megapixels > max_megapixels:
        raise DemoError(f"the webcam image is {megapixels:.1f} megapixels, this page takes "
                        f"at most {max_megapixels:g} (--max_upload_megapixels)")
    return np.ascontiguousarray(frame[..., :3].astype(np.uint8))


def no_telemetry() -> None:
    """Before Gradio is imported: no analytics, no hub telemetry (nothing leaves the machine)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def launch(config: DemoConfig, block: bool = True, print_fn=print,
           log_fn: Optional[Callable[[str], None]] = None):
    """Builds and starts the page; prints its address. Returns ``(demo, url)``.

    ``block=False`` returns once the server runs (tests, benchmarks); ``demo.close()`` stops it.
    ``log_fn``: each request's log line (default: stdout).
    """
    import logging

    no_telemetry()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    demo = build_demo(config, log_fn=log_fn)
    _, url, _ = demo.launch(server_name=config.host, server_port=config.port,
                            prevent_thread_lock=True, quiet=True, show_error=False,
                            max_file_size=MAX_FILE_BYTES, theme=page_theme(),
                            footer_links=["api"], ssr_mode=False, mcp_server=False)
    url = url.rstrip("/") + "/"
    print_fn(f"face aging demo on {url} ({config.model}; Ctrl+C stops it)", flush=True)
    if block:
        try:
            demo.block_thread()
        except KeyboardInterrupt:
            print_fn("demo stopped (Ctrl+C)", flush=True)
        finally:
            demo.close()
    return demo, url


if __name__ == "__main__":  # the documented command: python -m face_aging.demo
    from face_aging.apps.demo import run

    run()
