"""The old home of :class:`~face_aging.cyclegan.config.DataError` (``face_aging.apps.evaluate``
still imports it from here); the domains' folders are read by ``cyclegan.config.domain_images``."""
from face_aging.cyclegan.config import DataError

__all__ = ["DataError"]
