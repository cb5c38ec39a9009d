"""The ``demo`` section of ``python -m benchmarks``: the web demo's response time.

Seconds from upload to the strip: ``python -m face_aging.demo``'s page served on a free
loopback port in this process (the bundled IPCGAN, its 64 px faces), and a ``gradio_client``
call of its ``/age`` API with one photo of one face (matplotlib's 512x600 Grace Hopper):
upload, queue, face detection, the face aged to group 3 and to every group ("show all
ages"), paste-back, and both result images downloaded. Beside it, the same work without the
web server (``demo.age_photo`` on the decoded photo), interleaved with it.
"""
from __future__ import annotations

import os
import socket
import tempfile
from typing import Dict

from benchmarks.timing import median, time_interleaved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_response(warmup: int, repeats: int) -> Dict[str, object]:
    """``{"upload_to_strip": {...}, "age_photo": {...}, "first_request_s", ...}``; seconds.
    ``{"skipped": reason}`` without the ``[demo]`` extra."""
    import time

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from gradio_client import Client, handle_file
    except ImportError as e:
        return {"skipped": f"the [demo] extra is not installed ({e})"}
    import matplotlib

    from face_aging import demo, images

    photo = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    image, _ = images.read_image(photo)
    config = demo.DemoConfig(port=_free_port())
    with tempfile.TemporaryDirectory(prefix="face_aging_demo_bench_") as work:
        os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(work, "gradio"))
        page, url = demo.launch(config, block=False, print_fn=lambda *args, **kwargs: None,
                                log_fn=lambda line: None)
        try:
            client = Client(url, verbose=False, download_files=os.path.join(work, "client"),
                            analytics_enabled=False)
            model = demo.ModelCache().get(config.model, config.weights)

            def request():
                _, strip, message = client.predict(
                    handle_file(photo), None, config.model, "", 3.0, demo.FACES_LARGEST, True,
                    api_name="/age")
                if not strip:
                    raise RuntimeError(f"the demo answered without a strip: {message}")

            started = time.perf_counter()
            request()
            first = time.perf_counter() - started
            times = time_interleaved(
                {"upload_to_strip": request,
                 "age_photo": lambda: demo.age_photo(model, image, 3.0, demo.FACES_LARGEST,
                                                     True)},
                warmup, repeats)
        finally:
            page.close()
    return {"photo": os.path.basename(photo), "photo_size": [image.shape[1], image.shape[0]],
            "faces": 1, "model": f"{model.kind} {model.image_size}px (bundled)",
            "first_request_s": first,
            **{name: {"median_s": median(ts), "min_s": float(min(ts)),
                      "times_s": [float(t) for t in ts]} for name, ts in times.items()}}
