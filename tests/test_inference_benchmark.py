"""Scene inference batching and tools/analysis_tools/benchmark_inference.py:
batches span window rows (as many forward calls as a plain batched forward,
the same map for every batch size), the benchmark's paired ratios by hand,
and its time report on a tiny scene (same windows and forward calls on both
paths, phase shares that add up)."""
import math

import numpy as np
import pytest
import torch

from helpers import _tool
from inference_models import build, pixel_seg_config, save_checkpoint, \
    write_geotiff


@pytest.fixture(scope='module')
def pixel_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('pixel_batches')
    cfg = pixel_seg_config()
    model = build(cfg)
    return cfg, model, save_checkpoint(model, str(tmp / 'pixel.pth'))


def test_batches_span_window_rows_and_give_the_same_map(pixel_model,
                                                        tmp_path):
    from mmseg.structures import SegDataSample
    from mmringmoe.apis import RSInferencer
    cfg, model, ckpt = pixel_model
    img = np.random.default_rng(5).integers(0, 250, (70, 90, 3),
                                            dtype=np.uint8)
    # crop 32, stride 20: window rows 0, 20, 38 and columns 0, 20, 40, 58;
    # the window at (0, 58) is all nodata (skipped), its neighbours are not
    img[:32, 58:] = 255
    path = write_geotiff(tmp_path / 's.tif', img, nodata=255)
    inf = RSInferencer(cfg, ckpt)
    sizes = []
    forward = inf.forward_windows

    def counted(packed):
        sizes.append(len(packed))
        return forward(packed)

    inf.forward_windows = counted
    preds, probs = {}, {}
    for b in (1, 2, 3, 5, 12):
        sizes.clear()
        res = inf(path, crop=32, overlap=12, batch_size=b, probs=True)
        assert res.num_windows == 12 and res.num_skipped == 1
        # 11 windows with data: full batches, one remainder; a batch of 3
        # takes the last window of row 1 and two of row 2
        assert sizes == [b] * (11 // b) + ([11 % b] if 11 % b else []), \
            (b, sizes)
        assert len(sizes) == math.ceil(11 / b)
        preds[b], probs[b] = res.pred, res.probs
    for b in (2, 3, 5, 12):
        assert np.array_equal(preds[b], preds[1]), b
        np.testing.assert_allclose(probs[b], probs[1], atol=1e-7)
    # and the map equals a whole-image pass (a per-pixel model) off nodata
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    s = SegDataSample(metainfo=dict(img_shape=(70, 90), ori_shape=(70, 90)))
    data = model.data_preprocessor(dict(inputs=[x], data_samples=[s]))
    with torch.no_grad():
        ref = model.encode_decode(data['inputs'], [s.metainfo])[0]
    nodata = (img == 255).all(2)
    assert (preds[3][nodata] == 255).all()
    assert (preds[3][~nodata] == ref.argmax(0).numpy()[~nodata]).all()


def test_paired_ratios_by_hand():
    bench = _tool('analysis_tools/benchmark_inference')
    # bare 10, 12, 14 around scene 11.5, 14.3: 11.5 / 11 and 14.3 / 13
    r = bench.paired_ratios([10., 12., 14.], [11.5, 14.3])
    assert r['runs'] == [round(11.5 / 11, 3), 1.1]
    assert r['median'] == round((11.5 / 11 + 1.1) / 2, 3)
    assert r['min'] == round(11.5 / 11, 3) and r['max'] == 1.1
    # load that doubles linearly over the runs cancels: ratio 1 throughout
    bare = [10. * (1 + k / 4) for k in range(0, 9, 2)]
    scene = [10. * (1 + k / 4) for k in range(1, 9, 2)]
    assert bench.paired_ratios(bare, scene)['runs'] == [1.0] * 4
    with pytest.raises(ValueError, match='n scene runs between n \\+ 1'):
        bench.paired_ratios([1., 2.], [1., 2.])


def test_benchmark_time_report_on_a_tiny_scene(tmp_path):
    bench = _tool('analysis_tools/benchmark_inference')
    ckpt = str(tmp_path / 'tiny.pth')
    bench.make_checkpoint(ckpt)
    scene = str(tmp_path / 'scene.tif')
    bench.make_scene(scene, 128)
    rep = bench.time_ratio(scene, ckpt, crop=64, overlap=16, batch_size=2,
                           out=str(tmp_path / 'pred.tif'), repeats=2)
    # windows 0, 48, 64 per axis: 9, in 5 forward calls on both paths
    assert rep['windows'] == rep['num_windows'] == 9
    assert rep['forward_calls'] == dict(bare=5, scene=5)
    assert rep['threads'] == torch.get_num_threads()
    for kind in ('wall', 'cpu'):
        t = rep[kind]
        for way in ('interleaved', 'alternating'):
            r = t[way]['ratio']
            assert len(r['runs']) == 2
            assert r['min'] <= r['median'] <= r['max']
            assert r['min'] > 0.5, (way, r)  # not a bare time counted twice
        share = t['phase_share']
        assert set(share) == {'read', 'pipeline', 'preprocess', 'forward',
                              'blend', 'flush', 'write', 'other'}
        assert abs(sum(share.values()) - 1) < 1e-3
        assert all(v > 0 for k, v in share.items() if k != 'other'), share
    assert rep['ratio'] == rep['wall']['interleaved']['ratio']['median']
    # the wrappers are gone afterwards: a new run is not timed
    from mmringmoe.apis import blending, scene as scene_mod, writers
    assert scene_mod.Scene.read.__name__ == 'read'
    assert blending.RowBandAccumulator.add.__name__ == 'add'
    assert writers.GeoTIFFBlockWriter.write.__name__ == 'write'
