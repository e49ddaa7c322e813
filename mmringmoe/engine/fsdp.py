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
from functools import partial

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


#: Values that constructors give parameters they create themselves (modules
#: without ``reset_parameters``): Swin V2 attention (mmpretrain
#: ``WindowMSAV2``: ``logit_scale = log(10)``, zero ``q_bias``/``v_bias``), V1
#: attention (``WindowMSA``: zero bias table, drawn by its ``init_weights``),
#: RingMoE's mask token (zeros, drawn by its ``init_weights``).
CONSTRUCTOR_VALUES = {
    'logit_scale': lambda p: p.fill_(math.log(10.)),
    'q_bias': nn.init.zeros_,
    'v_bias': nn.init.zeros_,
    'mask_token': nn.init.zeros_,
    'relative_position_bias_table': nn.init.zeros_,
    'absolute_pos_embed': nn.init.zeros_,
}


def _construction_init(module: nn.Module, names) -> None:
    """What ``module``'s constructor gave its parameters ``names``."""
    if hasattr(module, 'reset_parameters'):
        # nn.Linear / Conv / LayerNorm and GroupedExperts: their
        # constructors call exactly this
        module.reset_parameters()
        return
    for name in names:
        init = CONSTRUCTOR_VALUES.get(name)
        if init is None:
            raise NotImplementedError(
                f'meta-device initialisation does not know the constructor '
                f'value of {type(module).__name__}.{name}; add it to '
                'mmringmoe.engine.fsdp.CONSTRUCTOR_VALUES')
        init(module._parameters[name])


def _init_weights_step(module: nn.Module) -> None:
    """What ``init_weights`` adds for ``module``'s own parameters (the DDP
    path calls ``model.init_weights()`` after construction)."""
    from mmpretrain.models.utils.attention import WindowMSA
    if hasattr(module, 'init_own_weights'):  # RingMoE: the mask token
        module.init_own_weights()
    elif isinstance(module, WindowMSA):  # its init_weights
        trunc_normal_(module.relative_position_bias_table, std=.02)


#: Classes whose ``init_weights`` :func:`_init_weights_step` reproduces.
KNOWN_INIT_WEIGHTS = ('RingMoE', 'RingMoEMindSpore', 'SwinTransformerV2',
                      'WindowMSA')


def check_meta_init_supported(model: nn.Module) -> None:
    """Refuse a model whose initialisation the meta path cannot reproduce:
    an ``init_cfg`` (``Pretrained`` included: it would load into meta
    tensors; use ``load_from``) or an unknown ``init_weights`` override."""
    from mmengine.model import BaseModule
    for name, m in model.named_modules():
        where = name or type(model).__name__
        if getattr(m, 'init_cfg', None):
            raise NotImplementedError(
                f'MetaInitFSDPStrategy: {where} ({type(m).__name__}) has '
                f'init_cfg={m.init_cfg!r}, which meta-device initialisation '
                'does not apply; drop it (use load_from for pretrained '
                'weights) or use the DDP config')
        for cls in type(m).__mro__:
            if 'init_weights' in cls.__dict__:
                if cls is not BaseModule and \
                        cls.__name__ not in KNOWN_INIT_WEIGHTS:
                    raise NotImplementedError(
                        f'MetaInitFSDPStrategy: {where} ({type(m).__name__})'
                        f' has its own init_weights ({cls.__qualname__}), '
                        'which meta-device initialisation does not '
                        'reproduce; extend mmringmoe.engine.fsdp')
                break


@torch.no_grad()
def materialize_module(module: nn.Module, device) -> None:
    """Allocate ``module``'s own meta parameters on ``device`` and give them
    the values the DDP path gives them: the constructor's
    (``reset_parameters``, i.e. PyTorch's defaults for linear, conv and norm
    layers and the experts' uniform init, or :data:`CONSTRUCTOR_VALUES`),
    then what the module's ``init_weights`` adds (the mask token's
    truncated normal). Not its children: FSDP calls this once per module."""
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
    _construction_init(module, meta)
    _init_weights_step(module)


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


def prepare_for_fsdp(model: nn.Module) -> None:
    """Every RMoE layer runs every modality's specialized experts (absent
    modalities on zero tokens) in a fixed order: each modality's experts are
    an FSDP unit, and a rank whose batch lacks a modality would otherwise
    skip that unit's collectives and hang the job."""
    from mmringmoe.models.layers.rmoe import RMoE
    for m in model.modules():
        if isinstance(m, RMoE):
            m.dispatch_absent_modalities = True


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
        check_meta_init_supported(model)
        prepare_for_fsdp(model)
        self.id_to_name = {id(p): n for n, p in model.named_parameters()}
        return model

    def _init_model_weights(self, model):
        # Every parameter is still on the meta device here (mmengine's
        # init_weights would fail copying out of them): param_init_fn
        # (materialize_module) gives each unit the DDP initialisation.
        return model

    def _wrap_model(self, model):
        if self.activation_checkpointing is not None:
            cfg = dict(self.activation_checkpointing)
            if 'checkpoint_wrapper_fn' not in cfg:
                # recomputed blocks route with their own forward's layout
                from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (  # noqa: E501
                    CheckpointImpl, checkpoint_wrapper)

                from mmringmoe.models.layers.rmoe import layout_context_fn
                cfg['checkpoint_wrapper_fn'] = partial(
                    checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT,
                    context_fn=layout_context_fn)
                self.activation_checkpointing = cfg
        if self.model_wrapper is None:
            self.model_wrapper = dict(type='MMFullyShardedDataParallel')
        self.model_wrapper = dict(self.model_wrapper)
        device = torch.device('cuda', torch.cuda.current_device()) \
            if torch.cuda.is_available() else torch.device('cpu')
        self.model_wrapper.setdefault(
            'param_init_fn', lambda m: materialize_module(m, device))
        return super()._wrap_model(model)


__all__ = ['params_on_meta', 'materialize_module', 'MetaInitFSDPStrategy',
           'check_meta_init_supported', 'prepare_for_fsdp',
           'ringmoe_block_wrap_policy', 'ringmoe_block_wrap_check']
