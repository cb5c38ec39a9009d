"""The TF Lite interpreter: LiteRT's (``ai-edge-litert``) where installed, else TensorFlow's.

TF 2.21's ``tf.lite.Interpreter`` still runs the ``.tflite`` files ``face_aging.export``
writes, but warns that it is deprecated in favour of ``ai_edge_litert.interpreter.Interpreter``,
which takes the same file and has the same API (``get_signature_runner`` ...). The
``[litert]`` extra installs it.
"""
from __future__ import annotations

from typing import Optional


def interpreter_class():
    """``ai_edge_litert.interpreter.Interpreter`` if importable, else ``tf.lite.Interpreter``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter
    return Interpreter


def tflite_interpreter(model_path: str, num_threads: Optional[int] = None):
    """An interpreter for ``model_path`` (tensors not yet allocated; signature runners
    allocate their own). ``num_threads``: CPU threads (default: the runtime's)."""
    return interpreter_class()(model_path=model_path, num_threads=num_threads)
