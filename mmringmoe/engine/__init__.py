# Each submodule registers its classes on import; add one import line per module.
from . import checkpoint  # noqa: F401
from . import hooks  # noqa: F401
from . import fsdp  # noqa: F401
from . import dist_checkpoint  # noqa: F401
from . import runner  # noqa: F401
