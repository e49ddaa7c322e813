# Each submodule registers its classes on import; add one import line per module.
from . import transforms  # noqa: F401,E402
