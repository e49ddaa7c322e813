"""A Runner whose ``--launcher pytorch`` also works on CPU-only machines.

mmengine 0.10.7 initialises torchrun processes with ``torch.cuda.set_device``
whatever the backend, so a CPU DDP run (gloo) stops before it starts. When no
GPU is visible this runner opens the gloo process group itself from the
torchrun environment (mmengine then finds it initialised and goes on as usual)
and wraps the model in DDP without ``device_ids``.
"""
import torch
import torch.distributed as torch_dist
from mmengine.runner import Runner

from mmringmoe.registry import RUNNERS


@RUNNERS.register_module()
class CPUDistRunner(Runner):
    """``mmengine.Runner`` + CPU (gloo) DDP under torchrun. Select it with
    ``runner_type='mmringmoe.CPUDistRunner'``; with a GPU it is the plain
    Runner."""

    def setup_env(self, env_cfg: dict) -> None:
        if (self.distributed and self.launcher == 'pytorch'
                and not torch.cuda.is_available()
                and not torch_dist.is_initialized()):
            dist_cfg = dict(env_cfg.get('dist_cfg', {}))
            backend = dist_cfg.pop('backend', 'gloo')
            if backend == 'nccl':
                backend = 'gloo'  # nccl needs GPUs
            torch_dist.init_process_group(backend=backend, **dist_cfg)
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and not torch.cuda.is_available():
            # DDP takes no device_ids for CPU modules
            model_wrapper_cfg = dict(model_wrapper_cfg or dict(
                type='MMDistributedDataParallel', broadcast_buffers=False,
                find_unused_parameters=self.cfg.get(
                    'find_unused_parameters', False)))
            model_wrapper_cfg.setdefault('device_ids', None)
        return super().wrap_model(model_wrapper_cfg, model)


__all__ = ['CPUDistRunner']
