# Each submodule registers its classes on import; add one import line per module.
from .mim_visualization_hook import MIMVisualizationHook  # noqa: F401
from .rs_visualization_hook import RSVisualizationHook  # noqa: F401
