"""Apply models to whole georeferenced scenes (DESIGN.md section 10)."""
from .blending import BLEND_MODES, RowBandAccumulator, ramp_1d, window_weights
from .model_spec import ModelSpec, describe_model, inference_meta
from .rs_inferencer import RSInferencer, SceneResult
from .scene import RasterArray, Scene, SceneSource, build_scene

__all__ = [
    'RSInferencer', 'SceneResult', 'RasterArray', 'Scene', 'SceneSource',
    'build_scene', 'ModelSpec', 'describe_model', 'inference_meta',
    'BLEND_MODES', 'RowBandAccumulator', 'ramp_1d', 'window_weights'
]

# registers mmringmoe.InferenceMetaHook (checkpoint meta['inference']); it
# lives in engine/hooks/ but is imported here to leave that package's
# __init__ to its owner
from mmringmoe.engine.hooks import inference_meta_hook  # noqa: F401,E402
