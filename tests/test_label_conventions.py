"""Issue 13 item 3: label value conventions of every label loader (change
detection, segmentation, few-shot, depth validity), and masks resampled to
feature resolution keep small objects."""
import numpy as np
import pytest
import torch
from PIL import Image

SIZE = 32


def _truth():
    """Ground truth: change (1) in a square, ignore (255) in a corner."""
    label = np.zeros((SIZE, SIZE), np.uint8)
    label[8:20, 10:24] = 1
    ignore = np.zeros((SIZE, SIZE), bool)
    ignore[:4, :6] = True
    return label, ignore


def _write(path, convention):
    """The truth written to disk in ``convention``."""
    label, ignore = _truth()
    if convention == '0/1':
        arr = label
    elif convention in ('0/255', '0/255-jpeg'):
        arr = label * 255
    else:  # 0/1/255
        arr = label.copy()
        arr[ignore] = 255
    if convention == '0/255-jpeg':
        Image.fromarray(arr).save(path, quality=75)
    else:
        Image.fromarray(arr).save(path)
    return path


EXT = {'0/1': '.png', '0/255': '.png', '0/1/255': '.png',
       '0/255-jpeg': '.jpg'}


def _expected(convention):
    label, ignore = _truth()
    if convention == '0/1/255':
        label = label.copy()
        label[ignore] = 255
    return label


def _load_change(path, convention):
    from mmringmoe.datasets.transforms.bitemporal import LoadChangeLabel
    out = LoadChangeLabel(label_convention=convention)(dict(
        seg_map_path=str(path), seg_fields=[], reduce_zero_label=False))
    return out['gt_seg_map']


def _f1(pred, gt):
    from mmringmoe.evaluation.metrics import ChangeDetectionMetric
    metric = ChangeDetectionMetric()
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.as_tensor(
        pred)[None]), gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))])
    return metric.compute_metrics(metric.results)['F1']


@pytest.mark.parametrize('convention', ['0/1', '0/255', '0/1/255',
                                        '0/255-jpeg'])
@pytest.mark.parametrize('explicit', [True, False])
def test_change_label_each_convention_perfect_prediction_f1_100(
        tmp_path, convention, explicit):
    """A perfect prediction (the truth; on ignored pixels 1, which is wrong
    for the truth) scores F1 = 100 whatever the file convention,
    given explicitly or detected ('auto'; 0/255 in a PNG is ambiguous, see
    the next test)."""
    path = _write(tmp_path / ('m' + EXT[convention]), convention)
    if not explicit and convention == '0/255':
        pytest.skip('ambiguous in auto mode: refused (next test)')
    gt = _load_change(path, convention if explicit else 'auto')
    np.testing.assert_array_equal(gt, _expected(convention))
    label, ignore = _truth()
    pred = label.copy()
    if convention == '0/1/255':
        pred[ignore] = 1  # ignored: any prediction there is fine
    assert _f1(pred, gt) == pytest.approx(100.0)
    if convention == '0/1/255':
        # the defect of issue 13: the old loader thresholded 0/1/255 at 128,
        # i.e. changed -> 0 and ignore -> 1; that label scores F1 = 0
        old = (np.asarray(Image.open(path)) >= 128).astype(np.uint8)
        assert _f1(label, old) == 0.0


def test_change_label_refusals_name_the_file(tmp_path):
    p01 = _write(tmp_path / 'a.png', '0/1')
    p0255 = _write(tmp_path / 'b.png', '0/255')
    p01255 = _write(tmp_path / 'c.png', '0/1/255')
    # {0, 255} in a PNG: 0/255 or 0/1/255 without changed pixels
    with pytest.raises(ValueError, match=r"b\.png.*\{0, 255\}.*"
                       r"label_convention='0/255' or '0/1/255'"):
        _load_change(p0255, 'auto')
    with pytest.raises(ValueError, match=r"b\.png.*found values \[0, 255\].*"
                       r"'0/1' expects only \[0, 1\]"):
        _load_change(p0255, '0/1')
    with pytest.raises(ValueError, match=r"c\.png.*\[0, 1, 255\].*'0/255'"):
        _load_change(p01255, '0/255')
    # a 0/1 file read as JPEG-noisy 0/255 would load all-unchanged
    with pytest.raises(ValueError, match=r"a\.png.*\[0, 1\].*'0/1'"):
        _load_change(p01, '0/255-jpeg')
    # class indices are not a binary mask
    multi = tmp_path / 'multi.png'
    Image.fromarray(np.arange(SIZE * SIZE, dtype=np.uint8).reshape(
        SIZE, SIZE) % 6).save(multi)
    with pytest.raises(ValueError, match=r'multi\.png.*expected a binary'):
        _load_change(multi, 'auto')
    # ... nor in a JPEG: no value reaches the 0/255 split
    Image.fromarray(np.asarray(Image.open(multi))).save(tmp_path / 'm.jpg',
                                                        quality=95)
    with pytest.raises(ValueError, match=r'm\.jpg.*expected a binary'):
        _load_change(tmp_path / 'm.jpg', 'auto')
    with pytest.raises(ValueError, match=r'm\.jpg.*none >= 128'):
        _load_change(tmp_path / 'm.jpg', '0/255-jpeg')
    with pytest.raises(ValueError, match='label_convention must be one of'):
        _load_change(p01, '0-1')


def _load_seg(path, **kwargs):
    from mmringmoe.datasets.seg_transforms import LoadSegAnnotations
    return LoadSegAnnotations(**kwargs)(dict(
        seg_map_path=str(path), seg_fields=[], reduce_zero_label=False))[
            'gt_seg_map']


@pytest.mark.parametrize('convention', ['0/1', '0/255', '0/1/255',
                                        '0/255-jpeg'])
def test_segmentation_binary_conventions(tmp_path, convention):
    path = _write(tmp_path / ('m' + EXT[convention]), convention)
    seg = _load_seg(path, num_classes=2, label_convention=convention)
    np.testing.assert_array_equal(seg, _expected(convention))


def test_segmentation_index_maps(tmp_path):
    label = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 5).astype(np.uint8)
    label[0, :3] = 255
    Image.fromarray(label).save(tmp_path / 'ok.png')
    np.testing.assert_array_equal(
        _load_seg(tmp_path / 'ok.png', num_classes=5), label)
    # the same map as a grey image saved in RGB: identical bands, kept
    Image.fromarray(np.repeat(label[..., None], 3, 2)).save(
        tmp_path / 'rgb.png')
    np.testing.assert_array_equal(
        _load_seg(tmp_path / 'rgb.png', num_classes=5), label)
    # a colour-coded label (bands differ) is refused, not cut to band 0
    colour = np.stack([label * 40, label * 10, 255 - label], 2)
    Image.fromarray(colour.astype(np.uint8)).save(tmp_path / 'colour.png')
    with pytest.raises(ValueError, match=r'colour\.png.*3 bands that differ'):
        _load_seg(tmp_path / 'colour.png')
    # 16-bit maps: values > 255 were wrapped by mmseg's uint8 cast
    big = label.astype(np.uint16)
    big[5, 5] = 256 + 3
    Image.fromarray(big).save(tmp_path / 'big.png')
    with pytest.raises(ValueError, match=r'big\.png.*0\.\.259.*0\.\.255'):
        _load_seg(tmp_path / 'big.png')
    # JPEG class indices are lossy
    Image.fromarray(label).save(tmp_path / 'lossy.jpg')
    with pytest.raises(ValueError, match=r'lossy\.jpg.*JPEG'):
        _load_seg(tmp_path / 'lossy.jpg')
    # a one-hot raster with two bands set at a pixel is not one-hot
    import tifffile
    hot = np.zeros((SIZE, SIZE, 3), np.uint8)
    hot[..., 0] = 255
    hot[:4, :4, 1] = 255
    tifffile.imwrite(tmp_path / 'hot.tif', hot)
    with pytest.raises(ValueError, match=r'hot\.tif.*16 pixels.*one-hot'):
        _load_seg(tmp_path / 'hot.tif')


def _fewshot(tmp_path, **kwargs):
    from mmringmoe.datasets.fewshot import FewShotSegEpisodeDataset
    return FewShotSegEpisodeDataset(
        dataset_name='isaid', fold=0, split='test', data_root=str(tmp_path),
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        lazy_init=True, **kwargs)


@pytest.mark.parametrize('convention', ['0/1', '0/255', '0/1/255',
                                        '0/255-jpeg'])
def test_fewshot_label_reader_conventions(tmp_path, convention):
    path = _write(tmp_path / ('m' + EXT[convention]), convention)
    ds = _fewshot(tmp_path, label_convention=convention)
    np.testing.assert_array_equal(ds._read_label(str(path)),
                                  _expected(convention))


def test_fewshot_index_reader_refuses_colour_and_mismatch(tmp_path):
    label = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 5).astype(np.uint8)
    colour = np.stack([label * 40, label * 10, 255 - label], 2)
    Image.fromarray(colour).save(tmp_path / 'colour.png')
    ds = _fewshot(tmp_path)
    # mmcv.imread + [..., 0] used to keep the first band of a colour label
    with pytest.raises(ValueError, match=r'colour\.png.*bands that differ'):
        ds._read_label(str(tmp_path / 'colour.png'))
    Image.fromarray(label).save(tmp_path / 'ok.png')
    np.testing.assert_array_equal(ds._read_label(str(tmp_path / 'ok.png')),
                                  label)
    with pytest.raises(ValueError, match="'0/255'.*reads 'index'"):
        _fewshot(tmp_path, label_convention='0/255',
                 pipeline=[dict(type='mmringmoe.LoadSegAnnotations')])


@pytest.mark.parametrize('convention', ['0/1', '0/255', '0/1/255',
                                        '0/255-jpeg'])
def test_depth_validity_mask_conventions(tmp_path, convention):
    """1 = valid; 0 and ignore are invalid depth (target 0)."""
    import tifffile

    from mmringmoe.datasets.transforms.dsm import LoadDSMFromFile
    dsm = np.linspace(250, 290, SIZE * SIZE, dtype=np.float32).reshape(
        SIZE, SIZE)
    tifffile.imwrite(tmp_path / 'dsm.tif', dsm)
    path = _write(tmp_path / ('v' + EXT[convention]), convention)
    out = LoadDSMFromFile(reference=None, valid_key='valid_path',
                          valid_convention=convention)(dict(
                              depth_map_path=str(tmp_path / 'dsm.tif'),
                              valid_path=str(path), seg_fields=[]))
    valid = _expected(convention) == 1
    np.testing.assert_array_equal(out['gt_depth_map'],
                                  np.where(valid, dsm, 0))


@pytest.mark.parametrize('size,stride', [(48, 8), (64, 16), (50, 8)])
def test_prototype_keeps_a_6x6_object_at_every_offset(size, stride):
    """A 6 x 6 object anywhere in the support mask gives a foreground
    prototype equal to the area-weighted mean of the feature cells it
    covers (independent reference: the per-cell pixel count of the mask);
    with the former bilinear resize some offsets gave no weight at all."""
    import torch.nn.functional as F

    from mmringmoe.models.fewshot import masked_average_pooling
    h = size // stride if size % stride == 0 else size // stride + 1
    torch.manual_seed(0)
    feats = torch.randn(1, 3, h, h, dtype=torch.float64)
    lost_bilinear = 0
    for y in range(size - 5):
        for x in range(size - 5):
            mask = torch.zeros(1, size, size, dtype=torch.float64)
            mask[0, y:y + 6, x:x + 6] = 1
            proto = masked_average_pooling(feats, mask)
            if size % stride == 0:
                # reference: pixel count of the object in each cell
                w = mask[0].reshape(h, stride, h, stride).sum((1, 3))
                ref = (feats[0] * w).sum((1, 2)) / w.sum()
                torch.testing.assert_close(proto[0], ref)
            else:
                assert torch.isfinite(proto).all()
                w = F.adaptive_avg_pool2d(mask[:, None], (h, h))
                assert w.sum() > 0
            bil = F.interpolate(mask[:, None], size=(h, h), mode='bilinear',
                                align_corners=False)
            lost_bilinear += int(bil.sum() == 0)
    if stride >= 8 and size % stride == 0:
        assert lost_bilinear > 0  # the check above can fail
