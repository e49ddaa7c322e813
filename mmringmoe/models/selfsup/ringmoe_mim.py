"""RingMoE multi-modal masked image modeling (paper Sec. 3.1, 3.3, Eq. 5-7).

SimMIM on unpaired modalities: every modality has its own patch embedding
(in the backbone), its own 1-layer linear decoder and its own reconstruction
target; all modalities of a batch go through the shared encoder in one pass.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
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


def _as_tensor(x, dtype=None) -> torch.Tensor:
    """numpy (also flipped views with negative strides) or tensor -> tensor."""
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)
    return torch.as_tensor(x, dtype=dtype)


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
    ``metainfo['modality']`` and optionally ``valid_mask`` (``(H, W)`` bool;
    nodata pixels are set to 0 after normalisation, see
    :meth:`zero_nodata`). Output: ``inputs`` ``{modality: (B_m, C_m, H,
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
            out_inputs[m] = self.zero_nodata(
                m, self.normalize(m, torch.stack(xs)), dss)
            out_samples[m] = list(dss)
        return dict(inputs=out_inputs, data_samples=out_samples)

    @staticmethod
    def zero_nodata(modality: str, x: torch.Tensor,
                    samples: Sequence) -> torch.Tensor:
        """Set the normalised input of nodata pixels (``valid_mask`` False in
        the data sample) to 0, the band mean, so the fill value (255, 65535,
        -9999, ...) never reaches the encoder. ``x``: ``(B, C, H, W)``."""
        for i, ds in enumerate(samples):
            if 'valid_mask' not in ds:
                continue
            v = _as_tensor(ds.valid_mask).to(device=x.device,
                                                  dtype=torch.bool)
            if tuple(v.shape) != tuple(x.shape[-2:]):
                raise ValueError(
                    f'RingMoEMIMDataPreprocessor: valid_mask of '
                    f'{ds.metainfo.get("img_path")!r} ({modality}) has shape '
                    f'{tuple(v.shape)}, the image {tuple(x.shape[-2:])}.')
            if not bool(v.all()):
                x[i] = torch.where(v, x[i], torch.zeros((), dtype=x.dtype,
                                                        device=x.device))
        return x


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
    its masked valid pixels (mean over those pixels' elements; nodata pixels,
    ``valid_mask`` False, do not count, see :meth:`reconstruction_loss`),
    summed over modalities, plus ``aux_loss_weight`` x the backbone's
    load-balance loss.

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
        return torch.stack([_as_tensor(ds.mask) for ds in samples])

    def valid_masks(self, modality: str, samples: List,
                    shape: Sequence[int]) -> torch.Tensor:
        """``(B, H, W)`` bool valid-pixel masks of a modality's batch.

        From every sample's ``valid_mask`` (``(H, W)`` bool, written by the
        loaders for nodata and by :class:`SARPower` for non-positive power,
        moved by the crop/flip, packed by ``PackInputs(algorithm_keys=[...,
        'valid_mask'])``). A sample without one counts as all valid, except
        for the SAR-L1 power target, whose nodata pixels hold a 0 fill value:
        there it is an error.
        """
        h, w = int(shape[-2]), int(shape[-1])
        out = []
        for ds in samples:
            if 'valid_mask' not in ds:
                if modality == 'sar_l1' and self.sar_l1_target == 'power':
                    raise ValueError(
                        f'SAR-L1 sample {ds.metainfo.get("img_path")!r} '
                        'carries no valid_mask: pack it with PackInputs('
                        "algorithm_keys=['gt_power', 'valid_mask']) after "
                        'mmringmoe.SARPower.')
                out.append(torch.ones((h, w), dtype=torch.bool))
                continue
            v = _as_tensor(ds.valid_mask).to(torch.bool)
            if tuple(v.shape) != (h, w):
                raise ValueError(
                    f'RingMoEMIM: valid_mask of {ds.metainfo.get("img_path")!r}'
                    f' ({modality}) has shape {tuple(v.shape)}, the target '
                    f'{(h, w)}; move it with the crop/resize/flip.')
            out.append(v.cpu())
        return torch.stack(out)

    def reconstruction_loss(self, modality: str, pred: torch.Tensor,
                            target: torch.Tensor, mask: torch.Tensor,
                            valid: torch.Tensor) -> torch.Tensor:
        """Eq. 6 for one modality over its masked AND valid pixels.

        Args:
            pred, target (torch.Tensor): ``(B, C, H, W)``.
            mask (torch.Tensor): ``(B, H/p, W/p)`` SimMIM mask on the model's
                patch grid (``p`` = head ``patch_size``), 1 = masked.
            valid (torch.Tensor): ``(B, H, W)`` bool valid-pixel mask.

        Returns:
            torch.Tensor: scalar, the head's criterion (L2 or L1) averaged
            over every channel of every masked valid pixel of the batch
            (``sum / (n_pixels * C)``, mmpretrain's
            ``PixelReconstructionLoss`` with the combined mask). Pixels that
            are not counted cannot change it, whatever their target or
            prediction. 0 (with a graph, no NaN) when the batch has no masked
            valid pixel.
        """
        head = self.head[modality]
        p = head.patch_size
        pix = mask.repeat_interleave(p, 1).repeat_interleave(p, 2).bool()
        if pix.shape != valid.shape:
            raise ValueError(
                f'RingMoEMIM: {modality!r} mask on pixels {tuple(pix.shape)} '
                f'and valid mask {tuple(valid.shape)} differ in size.')
        weight = (pix & valid.to(pix.device)).unsqueeze(1)
        if not bool(weight.any()):
            return pred.sum() * 0.
        # uncounted pixels: target := prediction, so a non-finite fill value
        # there cannot reach the loss or its gradient
        target = torch.where(weight, target.to(pred.dtype), pred.detach())
        # mmpretrain >= 1.0 names the loss module ``loss_module``
        loss_module = getattr(head, 'loss_module', None)
        if loss_module is None:
            loss_module = head.loss
        return loss_module(pred, target, weight.to(pred.dtype))

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
                _as_tensor(ds.gt_power, dtype=torch.float32)
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
        x = next(iter(inputs.values()))
        out = {}
        for m in inputs:
            target = self.target(m, inputs[m], data_samples[m])
            out[m] = dict(pred=preds[m], mask=masks[m], target=target,
                          valid=self.valid_masks(m, data_samples[m],
                                                 target.shape).to(x.device))
        return out

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
            losses[f'loss_rec_{m}'] = self.reconstruction_loss(
                m, out['pred'], out['target'], out['mask'], out['valid'])
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
