"""The ``mmringmoe`` scope: child registries of mmengine's root.

Any toolbox config can then name our parts as ``type='mmringmoe.X'`` while
keeping its own ``default_scope``; inside an ``mmringmoe``-scoped config the
toolboxes' parts are reached as ``mmpretrain.X``, ``mmseg.X``, ``mmdet.X`` or
``mmrotate.X``.
"""
from mmengine import registry as root
from mmengine.registry import Registry

_MODELS = ['mmringmoe.models']
_DATA = ['mmringmoe.datasets']
_ENGINE = ['mmringmoe.engine']
_EVAL = ['mmringmoe.evaluation']
_VIS = ['mmringmoe.visualization']


def _child(name, parent, locations):
    return Registry(name, parent=parent, scope='mmringmoe', locations=locations)


RUNNERS = _child('runner', root.RUNNERS, _ENGINE)
RUNNER_CONSTRUCTORS = _child('runner constructor', root.RUNNER_CONSTRUCTORS, _ENGINE)
LOOPS = _child('loop', root.LOOPS, _ENGINE)
HOOKS = _child('hook', root.HOOKS, _ENGINE)
LOG_PROCESSORS = _child('log_processor', root.LOG_PROCESSORS, _ENGINE)
OPTIMIZERS = _child('optimizer', root.OPTIMIZERS, _ENGINE)
OPTIM_WRAPPERS = _child('optim_wrapper', root.OPTIM_WRAPPERS, _ENGINE)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    root.OPTIM_WRAPPER_CONSTRUCTORS, _ENGINE)
PARAM_SCHEDULERS = _child('parameter scheduler', root.PARAM_SCHEDULERS, _ENGINE)
STRATEGIES = _child('strategy', root.STRATEGIES, _ENGINE)

DATASETS = _child('dataset', root.DATASETS, _DATA)
DATA_SAMPLERS = _child('data sampler', root.DATA_SAMPLERS, _DATA)
TRANSFORMS = _child('transform', root.TRANSFORMS, _DATA)

MODELS = _child('model', root.MODELS, _MODELS)
MODEL_WRAPPERS = _child('model_wrapper', root.MODEL_WRAPPERS, _MODELS)
WEIGHT_INITIALIZERS = _child('weight initializer', root.WEIGHT_INITIALIZERS, _MODELS)
TASK_UTILS = _child('task util', root.TASK_UTILS, _MODELS)

METRICS = _child('metric', root.METRICS, _EVAL)
EVALUATORS = _child('evaluator', root.EVALUATOR, _EVAL)

VISUALIZERS = _child('visualizer', root.VISUALIZERS, _VIS)
VISBACKENDS = _child('vis_backend', root.VISBACKENDS, _VIS)
