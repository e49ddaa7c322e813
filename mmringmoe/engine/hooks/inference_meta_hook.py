"""Checkpoint ``meta['inference']``: what scene inference needs besides the
weights (modality and band order, normalisation statistics, the training
samples' dtype, classes and palette, the test crop), so that
``tools/infer.py CONFIG CHECKPOINT`` works on a machine without the training
data's statistics files."""
from typing import Dict, Optional

from mmengine.hooks import Hook

from mmringmoe.registry import HOOKS


def first_sample_dtype(runner) -> Optional[str]:
    """dtype of the training data's first raster (its header only, via
    :func:`mmringmoe.datasets.transforms.raster_io.raster_info`), or None
    when the runner holds no built train dataloader or its first sample has
    no single ``img_path`` (multi-modal and pair datasets: their statistics
    files carry the dtype instead)."""
    # the built loop's loader (Runner keeps the config dict in
    # _train_dataloader); never runner.train_loop, which would build one
    loader = getattr(getattr(runner, '_train_loop', None), 'dataloader',
                     None) or getattr(runner, '_train_dataloader', None)
    ds = getattr(loader, 'dataset', None)
    for _ in range(4):  # ConcatDataset / RepeatDataset wrappers
        if hasattr(ds, 'datasets'):
            ds = ds.datasets[0]
        elif hasattr(ds, 'dataset'):
            ds = ds.dataset
        else:
            break
    if ds is None or not hasattr(ds, 'get_data_info'):
        return None
    try:
        info = ds.get_data_info(0)
        path = info.get('img_path')
        if not isinstance(path, str):
            return None
        from mmringmoe.datasets.transforms.raster_io import raster_info
        return raster_info(path).dtype
    except Exception:  # unreadable, remote, empty: the dtype stays unknown
        return None


@HOOKS.register_module()
class InferenceMetaHook(Hook):
    """Adds ``meta['inference']`` (:func:`mmringmoe.apis.inference_meta`)
    to every checkpoint the runner saves. Plain lists, numbers and strings
    only, so the file stays ``weights_only=True`` loadable. Runs before
    ``WeightsOnlyCheckpointHook`` (priority LOW < LOWEST).

    The training samples' dtype comes from the test pipeline's statistics
    files when they carry one, else from the first training raster's header
    (:func:`first_sample_dtype`, read once) for single-modality models; when
    neither says it, ``meta['inference']`` has no ``dtype`` and scene
    inference warns that it could not check the input's dtype."""
    priority = 'LOW'

    def __init__(self):
        self._sample_dtypes: Optional[Dict[str, str]] = None

    def before_save_checkpoint(self, runner, checkpoint):
        from mmringmoe.apis.model_spec import inference_meta
        meta = checkpoint.setdefault('meta', {})
        dataset_meta = meta.get('dataset_meta')
        if dataset_meta is None:
            model = getattr(runner.model, 'module', runner.model)
            dataset_meta = getattr(model, 'dataset_meta', None)
        info = inference_meta(runner.cfg, dataset_meta)
        mods = info.get('modalities') or []
        if len(mods) == 1 and mods[0] not in info.get('dtype', {}):
            if self._sample_dtypes is None:
                dt = first_sample_dtype(runner)
                self._sample_dtypes = {mods[0]: dt} if dt else {}
            info = inference_meta(runner.cfg, dataset_meta,
                                  self._sample_dtypes)
        meta['inference'] = info
