# Each submodule registers its classes on import; add one import line per module.
from . import transforms  # noqa: F401,E402
from . import change_detection  # noqa: F401,E402
from . import cls_split, seg_datasets, seg_transforms  # noqa: F401,E402
from . import ringmoss, samplers  # noqa: F401,E402
from . import depth, fewshot  # noqa: F401,E402
from . import det_datasets  # noqa: F401,E402
