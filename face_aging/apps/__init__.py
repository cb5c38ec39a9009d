"""The command lines: one module per command, each with ``run()`` (a console-script target),
``main(argv, ...)`` and, where it uses absl, ``define_flags(flag_values)``. The library
modules hold no command-line code.

Every module here imports no TensorFlow at import time, so ``--help`` and a bad flag answer
before it loads; the training commands call ``runtime_env.prepare_tf_environment`` first.
"""
import os

#: The example faces that ship with the package (``examples/test``, ``examples/train``: the
#: repository's ``images/test`` and ``images/train``).
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "examples")
