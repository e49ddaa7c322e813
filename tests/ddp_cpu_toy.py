"""mmengine's plain ``Runner`` with DDP on CPU processes (gloo), for
``tools/train.py --launcher pytorch`` runs of tests/toy_config.py in tests
(tests/test_fsdp_sharded_rng.py).

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` whatever the backend,
and its DDP wrapper is given ``device_ids=[LOCAL_RANK]``, which DDP refuses for
a CPU module. So, imported under torchrun (``custom_imports``), this module
opens the gloo process group itself (the runner then skips ``init_dist``), and
``CPUDistributedDataParallel`` is mmengine's ``MMDistributedDataParallel``
with ``device_ids=None``.
"""
import os

import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

if 'RANK' in os.environ and not dist.is_initialized():
    dist.init_process_group('gloo')


@MODEL_WRAPPERS.register_module(force=True)
class CPUDistributedDataParallel(MMDistributedDataParallel):

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, device_ids=None, **kwargs)
