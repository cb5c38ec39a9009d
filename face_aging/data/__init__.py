"""Data: the release's list-file layout (``lists``), the tf.data input pipeline (``pipeline``)."""
