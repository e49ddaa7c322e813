# Each submodule registers its classes on import; add one import line per module.
from . import metrics  # noqa: F401,E402
