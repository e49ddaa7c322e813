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
        same = str(tmp_path / 'same.png')  # a .png --out: said first
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
    else:  # a pair whose second date lies elsewhere, to a single-input
        # model: what the model takes is said before any grid check (the
        # grid messages: test_pair_mismatch_messages)
        other = write_geotiff(tmp_path / 'b.tif', np.zeros((70, 80, 3),
                                                           np.uint8),
                              transform=(10.0, 0, 500010.0, 0, -10.0,
                                         4000000.0))
        argv = [cfg, ckpt, scene, other, '--out', str(tmp_path / 'o.tif')]
        expect = 'takes one raster (INPUT), but was given 2 rasters'
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
        assert not (tmp_path / 'same.png').exists()
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


# --- the new-user trial: every bad option or input is one line, before
# --- anything is written (the map, its _probs file, the quick look)
@pytest.mark.parametrize('case', [
    'device_cuda', 'device_bad', 'show_size_0', 'show_size_neg', 'show_jpg',
    'show_no_ext', 'folder',
    'out_png', 'out_geojson', 'crop_0', 'crop_neg', 'batch_0', 'stats',
    'pair_to_single', 'sar_to_optical'])
def test_cli_trial_refusals(setup, tmp_path, capsys, monkeypatch, case):
    import torch
    cfg, ckpt, scene = setup
    out = str(tmp_path / 'o.tif')
    png = str(tmp_path / 'look.png')
    opts = {
        'device_cuda': (['--device', 'cuda'], "device 'cuda': no CUDA GPU"),
        'device_bad': (['--device', 'gpu0'],
                       "device 'gpu0' is not a device; expected 'cpu'"),
        'show_size_0': (['--show', png, '--show-size', 0],
                        '--show-size must be an integer > 0, got 0'),
        'show_size_neg': (['--show', png, '--show-size', -5],
                          '--show-size must be an integer > 0, got -5'),
        'show_jpg': (['--show', str(tmp_path / 'look.jpg')],
                     "(--show) has extension '.jpg'; the quick look is a "
                     'PNG: expected .png'),
        'show_no_ext': (['--show', str(tmp_path / 'look')],
                        "(--show) has extension 'none'; the quick look is a "
                        'PNG: expected .png'),
        'crop_0': (['--crop', 0], '--crop must be an integer > 0, got 0'),
        'crop_neg': (['--crop', -5], '--crop must be an integer > 0, got -5'),
        'batch_0': (['--batch-size', 0],
                    '--batch-size must be an integer > 0, got 0'),
        'stats': (['--stats', str(tmp_path / 'nonexist.json')],
                  f'statistics file {tmp_path / "nonexist.json"} (--stats) '
                  'does not exist'),
    }
    argv = [cfg, ckpt, scene, '--out', out, '--quiet']
    if case in opts:
        extra, expect = opts[case]
        argv += extra
        if case == 'device_cuda':  # the same on a machine with a GPU
            monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    elif case == 'folder':
        folder = tmp_path / 'frames'
        folder.mkdir()
        argv[2] = str(folder)
        expect = (f'input {folder} is a folder; a folder of frames (or a '
                  'video) is an input for tracking configs only')
    elif case in ('out_png', 'out_geojson'):
        out = str(tmp_path / ('seg.png' if case == 'out_png'
                              else 'seg.geojson'))
        argv[4] = out
        ext = '.png' if case == 'out_png' else '.geojson'
        expect = (f"output '{out}' has extension '{ext}' but a segmentation "
                  'model writes a GeoTIFF: expected .tif or .tiff')
    elif case == 'pair_to_single':
        two = write_geotiff(tmp_path / 'two.tif',
                            np.zeros((70, 80, 3), np.uint8))
        argv = [cfg, ckpt, scene, two, '--out', out]
        expect = ('the segmentation model of pixel_cfg.py takes one raster '
                  f'(INPUT), but was given 2 rasters: {scene}, {two}')
    else:  # a SAR file on another grid: the missing input is said first
        sar = write_geotiff(tmp_path / 'sar.tif',
                            np.zeros((30, 30, 1), np.float32))
        argv = [cfg, ckpt, scene, '--sar', sar, '--out', out]
        expect = ('the segmentation model of pixel_cfg.py takes one raster '
                  '(INPUT), but was given a SAR-L2 raster (--sar) it has no '
                  f'input for: {scene}, {sar}')
    before = file_digest(scene)
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert run_tool_main('infer', argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith('error: ')]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert expect in errors[0], errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # nothing
    assert file_digest(scene) == before


@pytest.fixture(scope='module')
def det_setup(tmp_path_factory):
    from inference_models import blob_det_config
    tmp = tmp_path_factory.mktemp('cli_det')
    cfg = blob_det_config()
    cfg_path = str(tmp / 'blob_cfg.py')
    cfg.dump(cfg_path)
    ckpt = save_checkpoint(build(cfg), str(tmp / 'blob.pth'))
    img = np.zeros((40, 40, 1), np.float32)
    img[10:15, 10:15] = 200  # bright after mean 0, std 255
    return cfg_path, ckpt, write_geotiff(tmp / 'sar.tif', img)


@pytest.mark.parametrize('name', ['ships.tif', 'ships.png', 'ships'])
def test_cli_detection_refuses_a_raster_output_name(det_setup, tmp_path,
                                                    capsys, name):
    cfg, ckpt, scene = det_setup
    out = str(tmp_path / name)
    assert run_tool_main('infer', [cfg, ckpt, scene, '--out', out,
                                   '--crop', 32, '--quiet']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: ') and \
        'a detection model writes a GeoJSON FeatureCollection: expected ' \
        '.geojson or .json' in err[-1], err
    assert not list(tmp_path.iterdir())
    # the expected name works
    out = str(tmp_path / 'ships.GeoJSON')
    res = run_tool_main('infer', [cfg, ckpt, scene, '--out', out,
                                  '--crop', 32, '--quiet'])
    assert res.task == 'detection' and len(res.pred['features']) == 1


def test_cli_world_file_without_crs_is_one_note(setup, tmp_path, capsys):
    """A JPEG with only a .jgw: GDAL gives a transform and no CRS; the map
    has the transform and no CRS, and one note: line says so."""
    import rasterio
    from PIL import Image
    cfg, ckpt, _ = setup
    img = np.random.default_rng(1).integers(0, 250, (40, 48, 3),
                                            dtype=np.uint8)
    jpg = tmp_path / 'photo.jpg'
    Image.fromarray(img).save(jpg, quality=95)
    # world file: x size, rotation, rotation, y size, x and y of the centre
    # of the top-left pixel
    (tmp_path / 'photo.jgw').write_text('2.0\n0\n0\n-2.0\n301.0\n999.0\n')
    out = str(tmp_path / 'o.tif')
    res = run_tool_main('infer', [cfg, ckpt, str(jpg), '--out', out,
                                  '--crop', 32, '--quiet'])
    assert res.task == 'segmentation'
    err = capsys.readouterr().err.strip().splitlines()
    notes = [line for line in err if line.startswith('note: ')]
    assert len(notes) == 1 and 'has a transform but no CRS' in notes[0], err
    with rasterio.open(out) as d:
        assert d.crs is None
        assert tuple(d.transform)[:6] == (2.0, 0.0, 300.0, 0.0, -2.0, 1000.0)
    # a georeferenced scene gets no note
    _, _, scene = setup
    run_tool_main('infer', [cfg, ckpt, scene, '--out',
                            str(tmp_path / 'g.tif'), '--crop', 32, '--quiet'])
    assert 'note: ' not in capsys.readouterr().err
