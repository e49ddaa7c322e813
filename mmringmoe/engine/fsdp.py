"""FSDP with meta-device initialisation for the 14.7B RingMoE pretraining.

mmengine's ``FSDPStrategy(skip_init_weights=True)`` still materialises the
whole model on every rank's CPU (``to_empty(device='cpu')``): 59 GB of fp32
per process for 14.7B parameters. Here parameters are created on the meta
device (buffers, e.g. Swin V2's relative-position tables, are small and are
computed for real), and FSDP materialises and initialises one wrapped unit at a
time directly on the rank's GPU through ``param_init_fn`` before sharding it,
so no process ever holds more than one unit unsharded.
"""
import math
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine._strategy import FSDPStrategy
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import FUNCTIONS

from mmringmoe.registry import STRATEGIES


@contextmanager
def params_on_meta():
    """Create every ``nn.Parameter`` registered inside on the meta device;
    buffers stay real (their values are computed at construction)."""
    register = nn.Module.register_parameter

    def register_on_meta(module, name, param):
        register(module, name, param)
        if param is not None and not param.is_meta:
            module._parameters[name] = nn.Parameter(
                param.to('meta'), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def _init_param(name: str, p: torch.Tensor):
    """Initialisation of parameters of modules without ``reset_parameters``
    (SimMIM / Swin V2 conventions)."""
    if name == 'logit_scale':
        nn.init.constant_(p, math.log(10))
    elif name in ('q_bias', 'v_bias') or name.endswith('bias'):
        nn.init.zeros_(p)
    elif p.dim() >= 2 or name == 'mask_token':
        trunc_normal_(p, std=.02)
    else:
        nn.init.zeros_(p)


@torch.no_grad()
def materialize_module(module: nn.Module, device) -> None:
    """Allocate ``module``'s own meta parameters on ``device`` and initialise
    them (not its children: FSDP calls this once per module)."""
    meta = [n for n, p in module.named_parameters(recurse=False) if p.is_meta]
    if not meta:
        return
    for name in meta:
        p = module._parameters[name]
        module._parameters[name] = nn.Parameter(
            torch.empty(p.shape, dtype=p.dtype, device=device),
            requires_grad=p.requires_grad)
    for name, b in list(module.named_buffers(recurse=False)):
        module._buffers[name] = b.to(device)
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    elif hasattr(module, 'reset_parameters'):
        module.reset_parameters()
    else:
        for name in meta:
            _init_param(name, module._parameters[name])


@FUNCTIONS.register_module()
def ringmoe_block_wrap_policy(module: nn.Module, recurse: bool,
                              nonwrapped_numel: int) -> bool:
    """FSDP auto-wrap policy: one unit per expert group (the collaborative
    experts, each modality's specialized experts: 0.41B parameters each in a
    1b stage-4 block) and one per Swin V2 block for the rest (attention,
    norms, shared expert, routers). A whole stage-4 block would be 2.2B."""
    if recurse:
        return True
    from mmpretrain.models.backbones.swin_transformer_v2 import SwinBlockV2

    from mmringmoe.models.layers.rmoe import GroupedExperts
    return isinstance(module, (SwinBlockV2, GroupedExperts))


@FUNCTIONS.register_module()
def ringmoe_block_wrap_check(module: nn.Module) -> bool:
    """Activation checkpointing ``check_fn``: recompute each Swin V2 block."""
    from mmpretrain.models.backbones.swin_transformer_v2 import SwinBlockV2
    return isinstance(module, SwinBlockV2)


@STRATEGIES.register_module()
class MetaInitFSDPStrategy(FSDPStrategy):
    """``FSDPStrategy`` that builds the model with meta parameters and lets
    FSDP materialise each unit on the GPU (``param_init_fn``).

    Use with ``runner_type='FlexibleRunner'``; give ``model_wrapper`` an
    ``auto_wrap_policy`` so that units are single blocks, otherwise the root
    unit would materialise everything at once.
    """

    def build_model(self, model):
        if isinstance(model, dict):
            with params_on_meta():
                model = super(FSDPStrategy, self).build_model(model)
        else:
            model = super(FSDPStrategy, self).build_model(model)
        self.id_to_name = {id(p): n for n, p in model.named_parameters()}
        return model

    def _wrap_model(self, model):
        if self.model_wrapper is None:
            self.model_wrapper = dict(type='MMFullyShardedDataParallel')
        self.model_wrapper = dict(self.model_wrapper)
        device = torch.device('cuda', torch.cuda.current_device()) \
            if torch.cuda.is_available() else torch.device('cpu')
        self.model_wrapper.setdefault(
            'param_init_fn', lambda m: materialize_module(m, device))
        return super()._wrap_model(model)


__all__ = ['params_on_meta', 'materialize_module', 'MetaInitFSDPStrategy',
           'ringmoe_block_wrap_policy', 'ringmoe_block_wrap_check']
