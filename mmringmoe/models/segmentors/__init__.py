from .ringmoe_segmentors import (DualModalityEncoderDecoder,  # noqa: F401
                                 RingMoEEncoderDecoder)

__all__ = ['RingMoEEncoderDecoder', 'DualModalityEncoderDecoder']
