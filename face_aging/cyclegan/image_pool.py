"""The reference's ``ImagePool``: a history of generated images for the discriminator updates.

Shrivastava et al. (2017), as ``util/image_pool.py`` of the reference: per image of a batch,

- while the pool holds fewer than ``pool_size`` images, the new image is stored and returned;
- once it is full, with probability 1/2 (``uniform(0, 1) > 0.5``) a uniformly chosen stored
  image is returned and the new one takes its place; otherwise the new image is returned
  and the pool is unchanged.

Unlike the reference (Python's global ``random``, contents lost on restart), the pool is
TF state: a ``[pool_size, H, W, C]`` variable, a fill count and its own seeded
``tf.random.Generator``. It runs inside a compiled training step, and all three go into
the training checkpoint (``tf.train.Checkpoint(pool_a=pool, ...)``), so a resumed run
continues with the same pool and the same draws. Random numbers are drawn only once the
pool is full, two per image that is swapped (p, then the index) and one otherwise, as the
reference draws them.
"""
from __future__ import annotations

from typing import List, Sequence

import tensorflow as tf


class ImagePool(tf.Module):
    """A pool of ``pool_size`` images of shape ``image_shape`` (``[H, W, C]``).

    Call :meth:`query` with a batch ``[B, H, W, C]`` (B static); it returns a batch of the
    same shape. ``pool_size=0`` returns the batch unchanged (the reference's no-pool mode).
    """

    def __init__(self, pool_size: int, image_shape: Sequence[int], seed: int = 0,
                 name: str = "image_pool"):
        super().__init__(name=name)
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = int(pool_size)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.images = tf.Variable(tf.zeros((self.pool_size,) + self.image_shape, tf.float32),
                                  trainable=False, name="images")
        self.count = tf.Variable(0, dtype=tf.int32, trainable=False, name="count")
        self.rng = tf.random.Generator.from_seed(seed)

    def state_variables(self) -> List[tf.Variable]:
        """Everything a query changes: the stored images, the count, the RNG state."""
        return [self.images, self.count, self.rng.state]

    def query(self, images: tf.Tensor) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        if self.pool_size == 0:
            return images
        if images.shape[0] is None:
            raise ValueError("ImagePool.query needs a static batch size")
        return tf.stack([self._query_one(images[i]) for i in range(images.shape[0])])

    def _query_one(self, image: tf.Tensor) -> tf.Tensor:
        def insert():
            self.images.scatter_update(tf.IndexedSlices(image[tf.newaxis], self.count[tf.newaxis]))
            self.count.assign_add(1)
            return image

        def maybe_swap():
            p = self.rng.uniform([], 0.0, 1.0)

            def swap():
                index = self.rng.uniform([], 0, self.pool_size, dtype=tf.int32)
                stored = tf.identity(tf.gather(self.images, index))
                with tf.control_dependencies([stored]):
                    self.images.scatter_update(tf.IndexedSlices(image[tf.newaxis],
                                                                index[tf.newaxis]))
                return stored

            return tf.cond(p > 0.5, swap, lambda: image)

        return tf.cond(self.count < self.pool_size, insert, maybe_swap)
