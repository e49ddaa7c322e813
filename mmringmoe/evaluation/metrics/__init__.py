# Each submodule registers its classes on import; add one import line per module.
from .rs_seg_metric import RSSegMetric, SceneOA  # noqa: F401
from .mot_metric import ClassAgnosticMOTChallengeMetric  # noqa: F401
from .change_detection import ChangeDetectionMetric  # noqa: F401
from .fewshot import FewShotAccuracy, FewShotSegMetric  # noqa: F401
from .voc_classwise import ClasswiseVOCMetric  # noqa: F401
