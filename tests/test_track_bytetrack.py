"""AIR-MOT / AIR-HSAO tracking: the CocoVideo converter, ByteTracker with the
paper's inference settings, and the two-stage ByteTrack + YOLOX configs
(tiny backbone, a generated 3-frame video, one training iteration and one
tracking evaluation per stage)."""
import copy
import functools
import json
import os.path as osp

import pytest
import torch

from det_track_data import make_airmot, moving, write_video
from helpers import (TINY_CHANNELS, run_test, run_tool_main, run_train,
                     tiny_backbone)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRK = 'configs/tracking/'
STAGE1 = TRK + 'bytetrack_yolox_ringmoe-opt-kc_pafpn_1xb2-5e-stage1_air-mot-640x640.py'  # noqa: E501
STAGE2 = TRK + 'bytetrack_yolox_ringmoe-opt-kc_pafpn_1xb2-2e-stage2_air-mot-1920x1080.py'  # noqa: E501
MOT_KEYS = ('motchallenge-metric/MOTA', 'motchallenge-metric/IDF1',
            'motchallenge-metric/HOTA')


@functools.lru_cache(maxsize=None)
def _load(config):
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, config))


def load_config(config):
    return copy.deepcopy(_load(config))


@pytest.fixture
def _plain_config_text(monkeypatch):
    """Skip yapf formatting of logged / dumped configs (slow, irrelevant)."""
    import mmengine.config.config as mm_config
    monkeypatch.setattr(mm_config, 'FormatCode',
                        lambda text, **kwargs: (text, False))


# ----------------------------------------------------------------- converter
def _convert(root, dataset='air-mot'):
    assert run_tool_main('dataset_converters/airmot2coco',
                         [root, '--dataset', dataset]) in (None, 0)
    return {s: osp.join(root, 'annotations', f'{s}_cocoformat.json')
            for s in ('train', 'test')}


def test_converter_output_loads_in_mmdet_with_every_box(tmp_path):
    from mmdet.datasets import CocoDataset, MOTChallengeDataset
    root = str(tmp_path)
    counts = make_airmot(root)
    files = _convert(root)
    with open(files['test']) as f:
        coco = json.load(f)
    assert [c['name'] for c in coco['categories']] == ['aircraft', 'ship']
    assert [im['frame_id'] for im in coco['images']] == [0, 1, 2]
    assert coco['images'][0]['file_name'] == 'test/test-01/img/000001.jpg'
    # first box of frame 2 moved 5 px: x 10 -> 15
    ann = [a for a in coco['annotations'] if a['image_id'] == 2
           and a['category_id'] == 1][0]
    assert ann['bbox'] == [15.0, 10.0, 30.0, 24.0]

    classes = dict(classes=('aircraft', 'ship'))
    for split in ('train', 'test'):
        ds = MOTChallengeDataset(
            data_root=root, ann_file=files[split],
            data_prefix=dict(img_path=''), metainfo=classes, pipeline=[],
            test_mode=(split == 'test'))
        frames = [f for v in range(len(ds))
                  for f in ds.get_data_info(v)['images']]
        assert len(frames) == 3
        boxes = [i for f in frames for i in f['instances']]
        assert len(boxes) == counts[split]
        # video name where MOTChallengeMetric looks for it
        assert frames[0]['img_path'].split(osp.sep)[-3] == f'{split}-01'
        assert osp.isfile(frames[0]['img_path'])
        assert len({b['instance_id'] for b in boxes}) == 2
        det = CocoDataset(data_root=root, ann_file=files[split],
                          data_prefix=dict(img=''), metainfo=classes,
                          pipeline=[], test_mode=True)
        assert sum(len(det.get_data_info(i)['instances'])
                   for i in range(len(det))) == counts[split]

    # AIR-HSAO: one class
    hsao = str(tmp_path / 'hsao')
    make_airmot(hsao, classes=('aircraft', ))
    with open(_convert(hsao, 'air-hsao')['train']) as f:
        assert [c['name'] for c in json.load(f)['categories']] == [
            'aircraft']


def _bad_video(root, **kwargs):
    write_video(osp.join(root, 'train', 'v1'), 3,
                [(1, 1, moving(10, 10, 30, 24))], **kwargs)


@pytest.mark.parametrize('case,kwargs,match', [
    ('outside', dict(gt_lines=['1,1,110,10,30,24,1,1,1']),
     r'line 1 \(frame 1, object id 1\).*outside the frame'),
    ('degenerate', dict(gt_lines=['2,1,10,10,0,24,1,1,1']),
     r'line 1 \(frame 2, object id 1\).*degenerate box'),
    ('unknown class', dict(gt_lines=['1,4,10,10,30,24,1,3,1']),
     r'object id 4\).*unknown class 3'),
    ('gt frame missing', dict(gt_lines=['4,1,10,10,30,24,1,1,1']),
     r'frame 4 is missing from the video'),
    ('gap in frames', dict(skip_frames=(2, )),
     r'frame 2 is missing from the video'),
])
def test_converter_rejects_bad_input_naming_file_and_object(
        tmp_path, case, kwargs, match):
    from mmringmoe.datasets.mot_convert import AIR_MOT_CLASSES, convert_split
    root = str(tmp_path)
    _bad_video(root, **kwargs)
    with pytest.raises(ValueError, match=match) as err:
        convert_split(root, 'train', AIR_MOT_CLASSES)
    where = 'gt.txt' if case != 'gap in frames' else osp.join('v1', 'img')
    assert where in str(err.value)
    assert not osp.exists(osp.join(root, 'annotations'))


# --------------------------------------------------------------- ByteTracker
def _tracker():
    import mmdet.models  # noqa: F401

    import mmringmoe  # noqa: F401  (the config's PredictingByteTracker)
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    cfg = load_config(STAGE1)
    # an earlier test may leave another default scope current
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model.tracker)


def _track(tracker, boxes, scores):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    ids = []
    for f, (box, score) in enumerate(zip(boxes, scores)):
        sample = DetDataSample(metainfo=dict(frame_id=f))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([box], dtype=torch.float32),
            labels=torch.tensor([0]),
            scores=torch.tensor([score]))
        out = tracker.track(sample)
        ids.append(out.instances_id.tolist())
    return ids


def test_paper_tracker_settings_mapped_onto_bytetracker():
    """B.5.5: NMS 0.65, track thresh 0.3, buffer 50, match thresh 0.8."""
    cfg = load_config(STAGE1)
    t = cfg.model.tracker
    assert cfg.model.detector.test_cfg.nms.iou_threshold == 0.65
    assert t.obj_score_thrs.high == 0.3
    assert t.init_track_thr == pytest.approx(0.3 + 0.1)
    assert t.match_iou_thrs.high == pytest.approx(1 - 0.8)
    assert t.num_frames_retain == 50
    assert load_config(STAGE2).model.tracker == t


def test_bytetrack_keeps_one_id_for_a_box_moving_5px_per_frame():
    frames = 10
    boxes = [[10 + 5 * f, 20, 40 + 5 * f, 44] for f in range(frames)]
    ids = _track(_tracker(), boxes, [0.9] * frames)
    assert all(len(i) == 1 for i in ids)
    assert len({i[0] for i in ids}) == 1
    # control: a box jumping 60 px per frame never overlaps its last
    # position and gets a new id (the check above can fail)
    jump = [[10 + 60 * f, 20, 40 + 60 * f, 44] for f in range(4)]
    ids = [i for i in _track(_tracker(), jump, [0.9] * 4) if i]
    assert len({i[0] for i in ids}) > 1


def test_track_threshold_and_new_track_threshold():
    boxes = [[10 + 5 * f, 20, 40 + 5 * f, 44] for f in range(4)]
    # 0.35 passes track_thresh 0.3 but not ByteTrack's new-track threshold
    # track_thresh + 0.1: no track is ever started
    assert _track(_tracker(), boxes, [0.35] * 4) == [[]] * 4
    # started at 0.45, then kept by detections of 0.35 (first association)
    ids = _track(_tracker(), boxes, [0.45, 0.35, 0.35, 0.35])
    assert all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == 1


# ----------------------------------------------------------- two-stage configs
def tiny_track_config(config, data_root, out_file, **extra):
    from mmengine.config import ConfigDict
    cfg = load_config(config)
    det = cfg.model.detector
    bb = det.backbone
    assert bb.type == 'mmringmoe.RingMoE' and tuple(bb.out_indices) == (
        1, 2, 3)
    arch = dict(bb.arch, base='tiny') if isinstance(bb.arch, dict) else 'tiny'
    keep = {k: bb[k] for k in ('frozen_stages', ) if k in bb}
    det.backbone = ConfigDict(tiny_backbone(
        arch=arch, modalities=tuple(bb.modalities), moe_mode=bb.moe_mode,
        out_indices=(1, 2, 3), **keep))
    det.neck.update(in_channels=TINY_CHANNELS[1:], out_channels=32,
                    num_csp_blocks=1)
    det.bbox_head.update(in_channels=32, feat_channels=32)

    def shrink(d):
        if d.get('type') == 'Resize':
            d['scale'] = (128, 96)
        if d.get('type') == 'RandomCrop':
            d['crop_size'] = (96, 96)
        if 'data_root' in d:
            d['data_root'] = data_root
        if 'num_workers' in d:
            d.update(num_workers=0, persistent_workers=False)

    def walk(node):
        if isinstance(node, dict):
            shrink(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        walk(cfg[key])
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_begin = 2
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0,
                                end=1)]
    cfg.default_hooks.logger.interval = 1
    cfg.merge_from_dict(extra)
    cfg.dump(out_file)
    return cfg


@pytest.mark.usefixtures('_plain_config_text')
def test_two_stage_tracking_configs_train_and_evaluate(tmp_path):
    root = str(tmp_path / 'data') + '/'
    make_airmot(root)
    _convert(root)
    # stage 1: full fine-tuning on crops
    cfg1 = str(tmp_path / 'stage1.py')
    c1 = tiny_track_config(STAGE1, root, cfg1)
    assert c1.optim_wrapper.optimizer.type == 'AdamW'
    run_train(cfg1, tmp_path / 's1')
    ck1 = tmp_path / 's1' / 'epoch_1.pth'
    metrics = run_test(cfg1, ck1, tmp_path / 's1_test')
    for key in MOT_KEYS:
        assert key in metrics, (key, sorted(metrics))
        assert float(metrics[key]) <= 1.0
    # stage 2: frozen backbone, full frames, from stage 1's checkpoint
    cfg2 = str(tmp_path / 'stage2.py')
    c2 = tiny_track_config(STAGE2, root, cfg2, load_from=str(ck1))
    assert c2.optim_wrapper.optimizer.type == 'SGD'
    assert c2.model.detector.backbone.frozen_stages == 3
    run_train(cfg2, tmp_path / 's2')
    ck2 = tmp_path / 's2' / 'epoch_1.pth'
    s1 = torch.load(ck1, map_location='cpu', weights_only=True)['state_dict']
    s2 = torch.load(ck2, map_location='cpu', weights_only=True)['state_dict']
    bb = [k for k in s1 if k.startswith('detector.backbone.')]
    assert bb and all(torch.equal(s1[k], s2[k]) for k in bb)
    head = [k for k in s1 if k.startswith('detector.bbox_head.')
            and s1[k].is_floating_point()]
    assert any(not torch.equal(s1[k], s2[k]) for k in head)
    metrics = run_test(cfg2, ck2, tmp_path / 's2_test')
    for key in MOT_KEYS:
        assert key in metrics


OTHER_CONFIGS = sorted(
    TRK + f'bytetrack_yolox_ringmoe-opt-{v}_pafpn_{s}_air-hsao-{r}.py'
    for v in ('kc', 'ep', 'ks', 'ka')
    for s, r in (('1xb2-5e-stage1', '640x640'),
                 ('1xb2-2e-stage2', '1920x1080')))


@pytest.mark.parametrize('config', OTHER_CONFIGS)
def test_air_hsao_configs_match_air_mot_but_data_and_backbone(config):
    stage = 'stage1' if 'stage1' in config else 'stage2'
    ref = load_config(STAGE1 if stage == 'stage1' else STAGE2)
    cfg = load_config(config)
    assert cfg.classes == ('aircraft', ) and ref.classes == ('aircraft',
                                                             'ship')
    assert cfg.model.detector.bbox_head.num_classes == 1
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg',
                'test_evaluator', 'custom_hooks'):
        assert cfg[key] == ref[key], key
    assert cfg.model.tracker == ref.model.tracker
    a, b = dict(cfg.model.detector), dict(ref.model.detector)
    a.pop('backbone'), b.pop('backbone')
    a.pop('bbox_head'), b.pop('bbox_head')
    assert a == b
    assert cfg.train_dataloader.dataset.pipeline == \
        ref.train_dataloader.dataset.pipeline
    assert cfg.train_dataloader.dataset.data_root == 'data/AIR-HSAO/'
    if stage == 'stage2':
        assert cfg.load_from == 'work_dirs/' + osp.basename(
            config.replace('2e-stage2', '5e-stage1').replace(
                '1920x1080', '640x640'))[:-3] + '/epoch_5.pth'


@pytest.mark.slow
@pytest.mark.usefixtures('_plain_config_text')
@pytest.mark.parametrize('config', OTHER_CONFIGS)
def test_air_hsao_config_trains_and_evaluates(config, tmp_path):
    root = str(tmp_path / 'data') + '/'
    make_airmot(root, classes=('aircraft', ))
    _convert(root, 'air-hsao')
    cfg_file = str(tmp_path / 'cfg.py')
    tiny_track_config(config, root, cfg_file, load_from=None)
    run_train(cfg_file, tmp_path / 'train')
    metrics = run_test(cfg_file, tmp_path / 'train' / 'epoch_1.pth',
                       tmp_path / 'test')
    for key in MOT_KEYS:
        assert key in metrics


@pytest.mark.parametrize('config', [STAGE1, STAGE2] + OTHER_CONFIGS)
def test_full_size_backbone_strides_8_16_32_match_the_pafpn(config):
    from test_det_configs import full_size_backbone
    cfg = load_config(config)
    det = cfg.model.detector
    bb = full_size_backbone(det.backbone)
    assert tuple(det.backbone.out_indices) == (1, 2, 3)  # strides 8, 16, 32
    assert [bb.num_out_channels[i] for i in (1, 2, 3)] == \
        det.neck.in_channels == [896, 1792, 3584]
    assert det.bbox_head.strides == (8, 16, 32)


def _video_samples(tmp_path, pred_shift=0.0):
    """A 3-frame video: an aircraft (class 1) and a ship (class 2) moving
    5 px per frame; predictions are the ground truth shifted by
    ``pred_shift`` px."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    frames = []
    for f in range(3):
        gts = [dict(instance_id=1, category_id=1, bbox=[10 + 5 * f, 10,
                                                       40 + 5 * f, 34],
                    mot_conf=1.0, visibility=1.0),
               dict(instance_id=2, category_id=2, bbox=[80 - 5 * f, 50,
                                                       108 - 5 * f, 80],
                    mot_conf=1.0, visibility=1.0)]
        sample = DetDataSample(metainfo=dict(
            img_path=str(tmp_path / 'test' / 'v1' / 'img' / f'{f + 1:06d}.jpg'),
            frame_id=f, ori_video_length=3, instances=gts))
        sample.pred_track_instances = InstanceData(
            bboxes=torch.tensor([g['bbox'] for g in gts]) + pred_shift,
            instances_id=torch.tensor([1, 2]),
            scores=torch.tensor([0.9, 0.9]),
            labels=torch.tensor([0, 1]))
        frames.append(sample)
    # what mmengine's Evaluator hands the metric (TrackDataSample.to_dict())
    return [dict(video_data_samples=frames)]


@pytest.mark.parametrize('shift,expected_mota', [(0.0, 1.0), (40.0, -1.0)])
def test_class_agnostic_mot_metric_scores_every_class(tmp_path, shift,
                                                      expected_mota):
    """MOTA = 1 - (FN + FP + IDSW) / GT over aircraft AND ships: perfect
    tracks give 1; tracks 40 px off give 6 FN + 6 FP over 6 GT = -1.
    mmdet's own metric only sees class 1, i.e. half the boxes."""
    import mmringmoe  # noqa: F401
    from mmdet.evaluation import MOTChallengeMetric

    from mmringmoe.evaluation.metrics.mot_metric import \
        ClassAgnosticMOTChallengeMetric
    ours = ClassAgnosticMOTChallengeMetric(metric=['CLEAR', 'Identity'])
    ours.process({}, _video_samples(tmp_path, shift))
    res = ours.evaluate(1)
    assert res['motchallenge-metric/MOTA'] == pytest.approx(expected_mota)
    assert res['motchallenge-metric/TP'] + \
        res['motchallenge-metric/FN'] == 6
    if shift == 0:
        assert res['motchallenge-metric/IDF1'] == pytest.approx(1.0)
        upstream = MOTChallengeMetric(metric=['CLEAR'])
        upstream.process({}, _video_samples(tmp_path, shift))
        up = upstream.evaluate(1)
        assert up['motchallenge-metric/TP'] + \
            up['motchallenge-metric/FN'] == 3


def _register_oracle_detector():
    """A detector that 'detects' each frame's ground-truth boxes (score 0.9),
    so the tracking loop, ByteTracker and the MOT metric are tested alone."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.model import BaseModule
    from mmengine.structures import InstanceData

    @MODELS.register_module(name='_OracleDetector', force=True)
    class _OracleDetector(BaseModule):

        def __init__(self, **kwargs):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def predict(self, inputs, data_samples):
            for sample in data_samples:
                gt = sample.gt_instances
                sample.pred_instances = InstanceData(
                    bboxes=gt.bboxes.clone().float(),
                    labels=gt.labels.clone(),
                    scores=torch.full((len(gt), ), 0.9))
            return data_samples


@pytest.mark.usefixtures('_plain_config_text')
def test_bytetrack_config_keeps_one_id_over_a_generated_video(tmp_path):
    """tools/test.py with the stage-2 config over a 10-frame AIR-MOT video
    (files on disk, CocoVideo json from the converter) in which one aircraft
    moves 5 px per frame: with perfect detections the config's ByteTracker
    keeps a single id, i.e. MOTA = IDF1 = 1 and no identity switch."""
    _register_oracle_detector()
    root = str(tmp_path / 'data') + '/'
    for split in ('train', 'test'):
        write_video(osp.join(root, split, f'{split}-01'), 10,
                    [(3, 1, moving(10, 30, 24, 20))])
    _convert(root)
    cfg_file = str(tmp_path / 'oracle.py')
    cfg = tiny_track_config(STAGE2, root, cfg_file, load_from=None)
    cfg.model.detector = dict(type='_OracleDetector')
    cfg.dump(cfg_file)
    ckpt = tmp_path / 'empty.pth'
    torch.save({'meta': {}, 'state_dict': {'detector.dummy': torch.zeros(1)}},
               ckpt)
    metrics = run_test(cfg_file, ckpt, tmp_path / 'test')
    assert metrics['motchallenge-metric/MOTA'] == pytest.approx(1.0)
    assert metrics['motchallenge-metric/IDF1'] == pytest.approx(1.0)
    assert metrics['motchallenge-metric/IDSW'] == 0
    assert metrics['motchallenge-metric/TP'] == 10
