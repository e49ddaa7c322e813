# Each submodule registers its classes on import; add one import line per module.
from .raster_io import (MODALITY_CHANNELS, SAR_L1_CHANNEL_NAMES,  # noqa: F401
                        GeoMeta, raster_info, read_raster_with_meta,
                        valid_mask_from, write_complex_int16_tiff,
                        LoadComplexSAR, LoadRSImageFromFile, read_raster,
                        write_raster)
from .sar import (SARAmplitudePhase, SARLogScale, SARPauliRGB,  # noqa: F401
                  SARPower, pauli_rgb, sar_power)
from .normalize import NormalizeRS, compute_band_stats  # noqa: F401
from .geometric import (RSRandomFlip, RSRandomResizedCrop,  # noqa: F401
                        RSResize, resize_bands)
from . import bitemporal  # noqa: F401  (issue 8: change detection pairs)
from . import dsm  # noqa: F401  (issue 8: DSM height targets)
