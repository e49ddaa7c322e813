from .predicting_byte_tracker import PredictingByteTracker  # noqa: F401

__all__ = ['PredictingByteTracker']
