from .ringmoe_mim import (MultiModalLinearDecoder, RingMoEMIM,  # noqa: F401
                          RingMoEMIMDataPreprocessor, RSLinearDecoder)
