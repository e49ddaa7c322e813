"""mmringmoe: RingMoE multi-modal remote sensing foundation model on OpenMMLab 2.0.

Importing the package registers every class in the ``mmringmoe`` scope, so
``custom_imports=dict(imports=['mmringmoe'])`` is all a toolbox config needs.
"""
from .version import __version__
from . import datasets, engine, evaluation, models, visualization  # noqa: F401,E402
from . import apis  # noqa: F401,E402  (scene inference: RSInferencer)
from .apis import RSInferencer  # noqa: E402

__all__ = ['__version__', 'RSInferencer']
