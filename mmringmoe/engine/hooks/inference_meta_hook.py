"""Checkpoint ``meta['inference']``: what scene inference needs besides the
weights (modality and band order, normalisation statistics, classes and
palette, the test crop), so that ``tools/infer.py CONFIG CHECKPOINT`` works on
a machine without the training data's statistics files."""
from mmengine.hooks import Hook

from mmringmoe.registry import HOOKS


@HOOKS.register_module()
class InferenceMetaHook(Hook):
    """Adds ``meta['inference']`` (:func:`mmringmoe.apis.inference_meta`)
    to every checkpoint the runner saves. Plain lists, numbers and strings
    only, so the file stays ``weights_only=True`` loadable. Runs before
    ``WeightsOnlyCheckpointHook`` (priority LOW < LOWEST)."""
    priority = 'LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        from mmringmoe.apis.model_spec import inference_meta
        meta = checkpoint.setdefault('meta', {})
        dataset_meta = meta.get('dataset_meta')
        if dataset_meta is None:
            model = getattr(runner.model, 'module', runner.model)
            dataset_meta = getattr(model, 'dataset_meta', None)
        meta['inference'] = inference_meta(runner.cfg, dataset_meta)
