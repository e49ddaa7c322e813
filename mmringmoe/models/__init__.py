# Each subpackage registers its classes on import; add one import line per subpackage.
from .backbones import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .change_detection import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .peft import *  # noqa: F401,F403
from .depth import *  # noqa: F401,F403
from .fewshot import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .trackers import *  # noqa: F401,F403
