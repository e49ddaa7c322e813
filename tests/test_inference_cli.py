"""tools/infer.py: outputs, quick look, and one-line refusals of bad input;
nothing is ever written over an input."""
import re

import numpy as np
import pytest

from helpers import run_tool_main
from inference_models import (PALETTE, build, file_digest, pixel_seg_config,
                              save_checkpoint, write_geotiff)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cli')
    cfg = pixel_seg_config()
    cfg_path = str(tmp / 'pixel_cfg.py')
    cfg.dump(cfg_path)
    ckpt = save_checkpoint(build(cfg), str(tmp / 'pixel.pth'))
    img = np.random.default_rng(0).integers(0, 250, (70, 80, 3),
                                            dtype=np.uint8)
    img[:5, :5] = 255
    scene = write_geotiff(tmp / 'scene.tif', img, nodata=255)
    return cfg_path, ckpt, scene


def test_cli_writes_geotiff_and_quicklook(setup, tmp_path, capsys):
    import rasterio
    from PIL import Image
    cfg, ckpt, scene = setup
    out, png = str(tmp_path / 'pred.tif'), str(tmp_path / 'look.png')
    res = run_tool_main('infer', [cfg, ckpt, scene, '--out', out, '--crop',
                                  32, '--overlap', 8, '--show', png,
                                  '--quiet'])
    assert res.task == 'segmentation'
    with rasterio.open(out) as d, rasterio.open(scene) as s:
        assert d.transform == s.transform and d.crs == s.crs
        assert (d.read(1)[:5, :5] == 255).all()
    look = np.asarray(Image.open(png))
    assert look.shape[1] == 160 and look.shape[0] > 70  # legend below
    assert (look[:5, :5] == (255, 0, 255)).all()  # nodata in magenta
    assert look[5:70, :80].std() > 10
    assert (look[:70, 80:] == 255).all()  # the legend's width, white
    assert 'segmentation: 9 windows' in capsys.readouterr().out
    # the legend holds the palette colour of every class in the GeoTIFF
    # and of no other class
    with rasterio.open(out) as d:
        present = set(np.unique(d.read(1)).tolist()) - {255}
    legend = {tuple(c) for c in look[70:].reshape(-1, 3).tolist()}
    for i, colour in enumerate(PALETTE):
        assert (tuple(colour) in legend) == (i in present), (i, present)


@pytest.mark.parametrize('case', ['out_is_input', 'exists', 'bands', 'pair',
                                  'show_is_out', 'input2_and_sar'])
def test_cli_bad_input_is_one_line_and_inputs_untouched(setup, tmp_path,
                                                        capsys, case):
    cfg, ckpt, scene = setup
    before = file_digest(scene)
    argv = [cfg, ckpt, scene, '--out']
    if case == 'out_is_input':
        argv += [scene, '--force']
        expect = 'is the input'
    elif case == 'exists':
        out = tmp_path / 'old.tif'
        out.write_bytes(b'keep me')
        argv += [str(out)]
        expect = 'exists; pass --force'
    elif case == 'show_is_out':
        same = str(tmp_path / 'same.tif')
        argv += [same, '--show', same, '--force']
        expect = 'is also an output of this run'
    elif case == 'input2_and_sar':  # was a traceback (ValueError)
        argv = [cfg, ckpt, scene, scene, '--sar', scene, '--out',
                str(tmp_path / 'o.tif')]
        expect = 'give INPUT2 (change detection) or --sar'
    elif case == 'bands':
        four = write_geotiff(tmp_path / 'four.tif', np.zeros((40, 40, 4),
                                                             np.uint8))
        argv = [cfg, ckpt, four, '--out', str(tmp_path / 'o.tif')]
        expect = "has 4 band(s) but the model expects 3 for modality 'opt'"
    else:  # a pair whose second date lies elsewhere
        other = write_geotiff(tmp_path / 'b.tif', np.zeros((70, 80, 3),
                                                           np.uint8),
                              transform=(10.0, 0, 500010.0, 0, -10.0,
                                         4000000.0))
        argv = [cfg, ckpt, scene, other, '--out', str(tmp_path / 'o.tif')]
        expect = 'change detection pair: date2'
    assert run_tool_main('infer', argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith('error: ')]
    # one error line, the last one (library warnings may come before it)
    assert len(errors) == 1 and err[-1] == errors[0] and expect in errors[0]
    # every option a refusal suggests is one tools/infer.py has
    from helpers import _tool
    options = vars(_tool('infer').parse_args(['c', 'k', 'i', '--out', 'o']))
    known = {'--' + k.replace('_', '-') for k in options}
    assert set(re.findall(r'--[a-z][a-z-]*', errors[0])) <= known
    assert file_digest(scene) == before
    if case == 'exists':
        assert (tmp_path / 'old.tif').read_bytes() == b'keep me'
    if case == 'show_is_out':
        assert not (tmp_path / 'same.tif').exists()
    assert not list(tmp_path.glob('*.part'))


def test_pair_mismatch_messages(tmp_path):
    from mmringmoe.apis import build_scene
    a = write_geotiff(tmp_path / 'a.tif', np.zeros((20, 30, 3), np.uint8))
    b = write_geotiff(tmp_path / 'b.tif', np.zeros((20, 30, 3), np.uint8),
                      crs='EPSG:4326')
    c = write_geotiff(tmp_path / 'c.tif', np.zeros((20, 31, 3), np.uint8))
    with pytest.raises(ValueError, match=r"date2 .*b.tif' has CRS EPSG:4326 "
                       r"but .*a.tif' has CRS EPSG:32633"):
        build_scene((a, b))
    with pytest.raises(ValueError, match=r'size 20 x 31 px .* is 20 x 30'):
        build_scene((a, c))
    with pytest.raises(ValueError, match='sar_l2 .* has CRS EPSG:4326'):
        build_scene({'opt': a, 'sar_l2': b})
    assert build_scene((a, a)).height == 20


def test_window_bar_counts_windows_on_a_terminal_only():
    """tools/infer.py's bar is mmringmoe.visualization.progress's: windows
    done out of the total on a terminal, nothing in a pipe or with
    --quiet."""
    import io
    from mmringmoe.visualization.progress import progress_counter

    class TTY(io.StringIO):
        def isatty(self):
            return True

    pipe, tty = io.StringIO(), TTY()
    for stream, quiet in ((pipe, False), (tty, True)):
        bar = progress_counter(9, desc='windows', quiet=quiet, stream=stream)
        bar.update(4)
        bar.update(5)
        bar.close()
        assert bar.n == 9 and stream.getvalue() == ''
    bar = progress_counter(9, desc='windows', unit='win', stream=tty)
    bar.update(4)
    bar.update(9 - bar.n)
    bar.close()
    assert '9/9' in tty.getvalue() and 'windows' in tty.getvalue()
