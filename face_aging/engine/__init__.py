"""What every training loop shares, whatever the model: signals, the non-finite guard, run
setup (determinism, writable folders, options file), tf.distribute helpers, sample images and
the release's Adam. No model package is imported here, and this package imports no TensorFlow
at import time (only its modules that run a network do)."""
