"""The --show quick look's legend: a swatch in the palette colour of every
class present in the prediction (and of no other), for class maps and
detections."""
import json

import numpy as np

from inference_models import (PALETTE, blob_det_config, build,
                              pixel_seg_config, save_checkpoint,
                              write_geotiff)


def _colours(img):
    return {tuple(c) for c in img.reshape(-1, 3).tolist()}


def _swatch_count(img, colour):
    return int((img == np.array(colour, np.uint8)).all(-1).sum())


def test_legend_lists_the_classes_present_in_the_full_map(tmp_path):
    """Classes 0 and 2 are present; class 2 in one pixel only, which the
    decimation by 2 skips in the picture: the legend still lists it (counted
    over the whole map); classes 1 and 3 are absent from the legend."""
    from PIL import Image
    from mmringmoe.apis import RSInferencer, build_scene
    from mmringmoe.apis.quicklook import render_quicklook
    from mmringmoe.apis.rs_inferencer import SceneResult
    cfg = pixel_seg_config()
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'p.pth'),
                           inference=dict(dtype=dict(opt='uint8')))
    spec = RSInferencer(cfg, ckpt).spec
    img = np.full((60, 80, 3), 128, np.uint8)
    scene_path = write_geotiff(tmp_path / 's.tif', img)
    pred = np.zeros((60, 80), np.uint8)
    pred[31, 41] = 2  # odd row and column: not in the ::2 decimation
    pred[:4, :4] = 255  # nodata
    res = SceneResult('segmentation', pred, None, None, None, 255, None,
                      spec.classes, spec.palette, None, 1, 0, (60, 80))
    png = str(tmp_path / 'q.png')
    render_quicklook(res, build_scene(scene_path), spec, png, max_size=40)
    look = np.asarray(Image.open(png))
    picture, legend = look[:30], look[30:]
    assert look.shape[1] == 160 and (look[:30, 40:] == 255).all()
    # the picture: grey scene blended with water's blue, no field yellow
    blend = (0.5 * 128 + 0.5 * np.array(PALETTE[0])).astype(np.uint8)
    assert tuple(blend) in _colours(picture)
    for i, colour in enumerate(PALETTE):
        assert (tuple(colour) in _colours(legend)) == (i in (0, 2))
        if i in (0, 2):  # an 8 x 8 swatch inside the 1 px black outline
            assert _swatch_count(legend, colour) >= 64


def test_detection_legend_has_the_outline_colours(tmp_path):
    from PIL import Image
    from mmringmoe.apis import RSInferencer, build_scene
    from mmringmoe.apis.quicklook import render_quicklook
    cfg = blob_det_config()
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'det.pth'),
                           classes=('ship', 'tank'),
                           palette=[[255, 0, 0], [0, 0, 255]],
                           inference=dict(dtype=dict(sar_l2='uint8')))
    img = np.zeros((64, 64, 1), np.uint8)
    img[20:30, 20:34] = 200
    path = write_geotiff(tmp_path / 'sar.tif', img)
    inf = RSInferencer(cfg, ckpt)
    res = inf(path, out=str(tmp_path / 'd.geojson'), crop=64)
    with open(tmp_path / 'd.geojson') as f:
        assert [p['properties']['class_name']
                for p in json.load(f)['features']] == ['ship']
    png = str(tmp_path / 'q.png')
    render_quicklook(res, build_scene(path), inf.spec, png)
    look = np.asarray(Image.open(png))
    picture, legend = look[:64, :64], look[64:]
    assert (picture[20, 20:34] == (255, 0, 0)).all()  # outline colour
    assert _swatch_count(legend, (255, 0, 0)) >= 64
    assert (0, 0, 255) not in _colours(legend)  # no tank detected


def test_detection_outlines_past_the_scene_keep_the_scene_view(tmp_path):
    """Detections reaching past the scene edges (a rotated one past the
    top-left corner, one past the bottom-right) are outlined with PIL's
    ImageDraw, which cuts them at the picture's edge: the picture keeps the
    decimated scene's size and every pixel away from the outlines is the
    scene's (matplotlib >= 3.11 visualizers shrank the image inside white
    to fit such boxes; this path must not)."""
    from PIL import Image
    from mmringmoe.apis import RSInferencer, build_scene
    from mmringmoe.apis.quicklook import render_quicklook
    from mmringmoe.apis.rs_inferencer import SceneResult
    cfg = pixel_seg_config()
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'p.pth'),
                           inference=dict(dtype=dict(opt='uint8')))
    spec = RSInferencer(cfg, ckpt).spec
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8)
    scene_path = write_geotiff(tmp_path / 's.tif', img)
    polys = [[(-30., 10.), (10., -25.), (35., 5.), (-5., 40.)],
             [(60., 40.), (110., 40.), (110., 90.), (60., 90.)]]
    feats = [dict(properties=dict(pixel_polygon=p, label=0)) for p in polys]
    res = SceneResult('detection', dict(features=feats), None, None, None,
                      None, None, spec.classes, spec.palette, None, 1, 0,
                      (60, 80))
    png = str(tmp_path / 'q.png')
    render_quicklook(res, build_scene(scene_path), spec, png)
    look = np.asarray(Image.open(png))
    picture = look[:60, :80]
    assert look.shape[1] == 160 and (look[:60, 80:] == 255).all()
    yy, xx = np.mgrid[0:60, 0:80] + 0.5
    near = np.zeros((60, 80), bool)
    for poly in polys:
        poly = np.array(poly)
        for p, q in zip(poly, np.roll(poly, -1, 0)):
            d = q - p
            t = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / (d @ d),
                        0, 1)
            near |= np.hypot(xx - p[0] - t * d[0],
                             yy - p[1] - t * d[1]) < 2
    assert near.any() and (~near).mean() > 0.8
    np.testing.assert_array_equal(picture[~near], img[~near])
    # the outlines are drawn, in class 0's colour, up to the edges
    outline = (picture == np.array(PALETTE[0], np.uint8)).all(-1)
    assert outline[59, 60] and outline[40, 79]
