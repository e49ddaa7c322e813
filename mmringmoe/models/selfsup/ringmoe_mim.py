"""RingMoE multi-modal masked image modeling (paper Sec. 3.1, 3.3, Eq. 5-7).

SimMIM on unpaired modalities: every modality has its own patch embedding
(in the backbone), its own 1-layer linear decoder and its own reconstruction
target; all modalities of a batch go through the shared encoder in one pass.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseDataPreprocessor, BaseModule
from mmpretrain.models.heads import SimMIMHead
from mmpretrain.models.necks import SimMIMLinearDecoder
from mmpretrain.models.selfsup import BaseSelfSupervisor

from mmringmoe.registry import MODELS

#: decoder output channels per modality: pixels for opt/ms/sar_l2, the power
#: map (1 channel) for sar_l1 (Eq. 5).
TARGET_CHANNELS = dict(opt=3, ms=4, sar_l1=1, sar_l2=1)
INPUT_CHANNELS = dict(opt=3, ms=4, sar_l1=8, sar_l2=1)


def _modality_of(data_sample) -> str:
    modality = data_sample.metainfo.get('modality')
    if modality is None:
        raise ValueError(
            'RingMoEMIM: data sample of '
            f'{data_sample.metainfo.get("img_path")!r} has no "modality"; pack '
            "it with PackInputs(meta_keys=(..., 'modality')).")
    return modality


@MODELS.register_module()
class RingMoEMIMDataPreprocessor(BaseDataPreprocessor):
    """Groups a mixed-modality batch by modality, casts and normalises it.

    Input: ``pseudo_collate`` output, ``inputs`` a list of ``(C_m, H, W)``
    tensors in any dtype (8-bit, int16 SAR, float), ``data_samples`` with
    ``metainfo['modality']``. Output: ``inputs`` ``{modality: (B_m, C_m, H,
    W) float}`` and ``data_samples`` ``{modality: [samples]}``, modalities in
    ``modalities`` order so every rank and run builds the same dict.

    Args:
        modalities (Sequence[str]): Order of the output dict.
        norm_cfg (dict, optional): ``{modality: dict(mean=[...],
            std=[...])}``; modalities without an entry are only cast to float.
        stats_file (str, optional): JSON of
            ``tools/dataset_converters/compute_rs_stats.py``, read at the first
            batch (the file may be generated together with the data); entries
            of ``norm_cfg`` win.
    """

    def __init__(self,
                 modalities: Sequence[str] = ('opt', 'ms', 'sar_l1', 'sar_l2'),
                 norm_cfg: Optional[Dict[str, dict]] = None,
                 stats_file: Optional[str] = None,
                 non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        self.modalities = tuple(modalities)
        self.norm_cfg = dict(norm_cfg or {})
        self.stats_file = stats_file
        self._stats_loaded = stats_file is None
        for m, cfg in self.norm_cfg.items():
            self._register_stats(m, cfg)

    def _register_stats(self, modality, cfg):
        mean = torch.tensor(cfg['mean'], dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(cfg['std'], dtype=torch.float32).view(-1, 1, 1)
        self.register_buffer(f'mean_{modality}', mean, persistent=False)
        self.register_buffer(f'std_{modality}', std, persistent=False)

    def _load_stats_file(self, device):
        if self._stats_loaded:
            return
        if not osp.isfile(self.stats_file):
            raise FileNotFoundError(
                f'Normalisation statistics {self.stats_file!r} not found; '
                'compute them with tools/dataset_converters/compute_rs_stats.py')
        with open(self.stats_file) as f:
            stats = json.load(f)
        for m, st in stats.items():
            if m not in self.norm_cfg and m in self.modalities:
                self.norm_cfg[m] = dict(mean=st['mean'], std=st['std'])
                self._register_stats(m, self.norm_cfg[m])
                getattr(self, f'mean_{m}').data = getattr(
                    self, f'mean_{m}').to(device)
                getattr(self, f'std_{m}').data = getattr(
                    self, f'std_{m}').to(device)
        missing = [m for m in self.modalities if m not in self.norm_cfg]
        if missing:
            # raw int16 SAR fed unnormalised would silently wreck training
            raise ValueError(
                f'Normalisation statistics {self.stats_file!r} have no entry '
                f'for modalities {missing}; rerun compute_rs_stats.py on the '
                'data root or give norm_cfg for them.')
        self._stats_loaded = True

    def normalize(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if modality not in self.norm_cfg:
            return x
        mean = getattr(self, f'mean_{modality}')
        std = getattr(self, f'std_{modality}')
        if mean.numel() not in (1, x.shape[1]):
            raise ValueError(
                f'RingMoEMIMDataPreprocessor: {modality!r} inputs have '
                f'{x.shape[1]} channels but the statistics {mean.numel()}.')
        return (x - mean.to(x.device)) / std.to(x.device)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, samples = data['inputs'], data['data_samples']
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs)
        self._load_stats_file(inputs[0].device)
        groups: Dict[str, list] = {}
        for x, ds in zip(inputs, samples):
            groups.setdefault(_modality_of(ds), []).append((x, ds))
        unknown = set(groups) - set(self.modalities)
        if unknown:
            raise ValueError(f'RingMoEMIMDataPreprocessor: modalities '
                             f'{sorted(unknown)} not in {self.modalities}')
        out_inputs, out_samples = {}, {}
        for m in self.modalities:
            if m not in groups:
                continue
            xs, dss = zip(*groups[m])
            out_inputs[m] = self.normalize(m, torch.stack(xs))
            out_samples[m] = list(dss)
        return dict(inputs=out_inputs, data_samples=out_samples)


@MODELS.register_module()
class RSLinearDecoder(SimMIMLinearDecoder):
    """SimMIM's linear decoder (1x1 conv + pixel shuffle) with any number of
    output channels (mmpretrain's is fixed to RGB)."""

    def __init__(self, in_channels: int, encoder_stride: int,
                 out_channels: int = 3) -> None:
        super().__init__(in_channels=in_channels, encoder_stride=encoder_stride)
        self.out_channels = out_channels
        self.decoder[0] = nn.Conv2d(
            in_channels, encoder_stride**2 * out_channels, kernel_size=1)


@MODELS.register_module()
class MultiModalLinearDecoder(BaseModule):
    """One :class:`RSLinearDecoder` per modality (Sec. 3.3, ``g_phi``).

    Args:
        in_channels (int): Width of the last encoder stage.
        encoder_stride (int): Total encoder stride (32 for Swin).
        out_channels (dict): Target channels per modality.
    """

    def __init__(self, in_channels: int, encoder_stride: int,
                 out_channels: Dict[str, int], init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.decoders = nn.ModuleDict({
            m: RSLinearDecoder(in_channels, encoder_stride, c)
            for m, c in out_channels.items()
        })

    def forward(self, feats: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {m: self.decoders[m](x) for m, x in feats.items()}


@MODELS.register_module()
class RingMoEMIM(BaseSelfSupervisor):
    """RingMoE masked image modeling pretraining.

    Loss (Eq. 6-7): for every modality of the batch the squared error over
    its masked pixels (mean over masked elements), summed over modalities,
    plus ``aux_loss_weight`` x the backbone's load-balance loss.

    Args:
        backbone (dict): ``mmringmoe.RingMoE`` with ``use_mask_token=True``.
        neck (dict, optional): Decoders; defaults to
            :class:`MultiModalLinearDecoder` on the last stage with the
            targets' channels.
        head (dict, optional): Loss settings per modality, a
            ``mmpretrain.SimMIMHead`` config used as template:
            ``dict(patch_size=4, loss=dict(type='PixelReconstructionLoss',
            criterion='L2'))``. ``criterion='L1'`` is the authors' code.
        sar_l1_target (str): ``'power'`` (physics-informed, Eq. 5, read from
            ``data_sample.gt_power``) or ``'pixel'`` (the 8 normalised
            input channels, the Tab. A18 ablation).
        aux_loss_weight (float): alpha of Eq. 7. Defaults to 0.001.
        encoder_stride (int): Defaults to 32.
        data_preprocessor (dict, optional): Defaults to
            :class:`RingMoEMIMDataPreprocessor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 sar_l1_target: str = 'power',
                 aux_loss_weight: float = 0.001,
                 encoder_stride: int = 32,
                 target_channels: Optional[Dict[str, int]] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None):
        if sar_l1_target not in ('power', 'pixel'):
            raise ValueError("sar_l1_target must be 'power' or 'pixel', got "
                             f'{sar_l1_target!r}')
        if isinstance(backbone, dict):
            backbone = dict(backbone)
            backbone.setdefault('use_mask_token', True)
            backbone = MODELS.build(backbone)
        if not getattr(backbone, 'use_mask_token', False):
            raise ValueError('RingMoEMIM needs a backbone built with '
                             'use_mask_token=True')
        modalities = tuple(backbone.modalities)
        channels = dict(TARGET_CHANNELS)
        if sar_l1_target == 'pixel':
            channels['sar_l1'] = backbone.in_channels.get('sar_l1', 8)
        for m in ('opt', 'ms', 'sar_l2'):
            if m in backbone.in_channels:
                channels[m] = backbone.in_channels[m]
        channels.update(target_channels or {})
        self.target_channels = {m: channels[m] for m in modalities}
        if neck is None:
            neck = dict(
                type='mmringmoe.MultiModalLinearDecoder',
                in_channels=backbone.num_out_channels[-1],
                encoder_stride=encoder_stride,
                out_channels=self.target_channels)
        head = dict(head or dict(
            patch_size=4, loss=dict(type='PixelReconstructionLoss',
                                    criterion='L2')))
        head.pop('type', None)
        heads = nn.ModuleDict()
        for m, c in self.target_channels.items():
            loss = dict(head['loss'])
            loss['type'] = _mmpretrain_type(loss['type'])
            loss.setdefault('channel', c)
            heads[m] = SimMIMHead(patch_size=head['patch_size'], loss=loss)
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmringmoe.RingMoEMIMDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('modalities', modalities)
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            backbone=backbone,
            neck=MODELS.build(neck) if isinstance(neck, dict) else neck,
            head=heads,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.modalities = modalities
        self.sar_l1_target = sar_l1_target
        self.aux_loss_weight = aux_loss_weight

    # ------------------------------------------------------------------
    def extract_feat(self, inputs):
        """Unmasked features: a tuple, or ``{modality: tuple}`` for a dict."""
        return self.backbone(inputs)

    @staticmethod
    def _stack_masks(samples: List) -> torch.Tensor:
        return torch.stack([torch.as_tensor(ds.mask) for ds in samples])

    def target(self, modality: str, x: torch.Tensor,
               samples: List) -> torch.Tensor:
        """Reconstruction target t_m of Eq. 5 for a modality's batch."""
        if modality == 'sar_l1' and self.sar_l1_target == 'power':
            missing = [ds.metainfo.get('img_path') for ds in samples
                       if 'gt_power' not in ds]
            if missing:
                raise ValueError(
                    f'SAR-L1 samples {missing} carry no gt_power: add '
                    "mmringmoe.SARPower to the sar_l1 pipeline (before "
                    "normalisation) and PackInputs(algorithm_keys=['gt_power'])")
            power = torch.stack([
                torch.as_tensor(ds.gt_power, dtype=torch.float32)
                for ds in samples
            ]).to(x.device)
            return power.unsqueeze(1) if power.dim() == 3 else power
        return x

    def reconstruct(self, inputs: Dict[str, torch.Tensor],
                    data_samples: Dict[str, List]) -> Dict[str, dict]:
        """Predictions, targets and masks per modality (one shared pass)."""
        masks = {
            m: self._stack_masks(data_samples[m]).to(x.device)
            for m, x in inputs.items()
        }
        feats = self.backbone(inputs, mask=masks)
        preds = self.neck({m: f[-1] for m, f in feats.items()})
        return {
            m: dict(pred=preds[m], mask=masks[m],
                    target=self.target(m, inputs[m], data_samples[m]))
            for m in inputs
        }

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: Dict[str, List], **kwargs) -> Dict[str, torch.Tensor]:
        if not isinstance(inputs, dict):
            raise TypeError('RingMoEMIM expects inputs grouped by modality; use '
                            'mmringmoe.RingMoEMIMDataPreprocessor')
        losses = {}
        for m, out in self.reconstruct(inputs, data_samples).items():
            if out['pred'].shape[-2:] != out['target'].shape[-2:]:
                raise ValueError(
                    f'RingMoEMIM: {m!r} prediction {tuple(out["pred"].shape)} '
                    f'and target {tuple(out["target"].shape)} differ in size; '
                    'crop inputs to a multiple of the mask patch size.')
            losses[f'loss_rec_{m}'] = self.head[m].loss(
                out['pred'], out['target'], out['mask'])
        aux = self.backbone.aux_loss()
        losses['loss_aux'] = self.aux_loss_weight * aux
        return losses

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'predict':
            return self.reconstruct(inputs, data_samples)
        return super().forward(inputs, data_samples, mode)


def _mmpretrain_type(name: str) -> str:
    """Build head losses from mmpretrain's registry whatever the scope."""
    if '.' in name:
        return name
    return f'mmpretrain.{name}'


__all__ = [
    'RingMoEMIM', 'RingMoEMIMDataPreprocessor', 'RSLinearDecoder',
    'MultiModalLinearDecoder', 'TARGET_CHANNELS'
]
