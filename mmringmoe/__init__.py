"""mmringmoe: RingMoE multi-modal remote sensing foundation model on OpenMMLab 2.0."""
from .version import __version__

__all__ = ['__version__']
