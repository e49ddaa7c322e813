from .moe_detectors import RingMoEFasterRCNN, RingMoEYOLOX  # noqa: F401

__all__ = ['RingMoEFasterRCNN', 'RingMoEYOLOX']
