# Each submodule registers its classes on import; add one import line per module.
"""Display images of every modality and prediction pictures of every task.

* :mod:`.display` -- any modality -> uint8 RGB (:func:`display_image`),
  percentile stretches of the valid pixels, Pauli RGB, SAR dB, nodata colour;
* :mod:`.overlay` -- panels, titles, legends, colour bars;
* :mod:`.visualizers` -- the toolboxes' visualizers over display images and
  :class:`PredictionPainter` (one figure per test sample, any task);
* :mod:`.capture` -- :class:`CaptureDisplayImage`, the pipeline step that
  keeps the display image of the loaded array;
* :mod:`.analysis` -- routing maps, expert activation curves, t-SNE and
  confusion matrix figures.
"""
from .display import (BAND_NAMES, DISPLAY_BANDS, NODATA_COLOR,  # noqa: F401
                      PERCENTILES, DisplayImage, amplitude_db, display_image,
                      infer_modality, paint_nodata, pauli_rgb,
                      percentile_stretch, sar_power_db, stretch_band,
                      to_uint8)
from .capture import CaptureDisplayImage  # noqa: F401
from .visualizers import (PredictionPainter,  # noqa: F401
                          RSDetLocalVisualizer, RSRotLocalVisualizer,
                          RSSegLocalVisualizer, RSTrackLocalVisualizer)
from .progress import progress  # noqa: F401
