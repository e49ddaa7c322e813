from .ringmoe_classifier import RingMoEImageClassifier  # noqa: F401

__all__ = ['RingMoEImageClassifier']
