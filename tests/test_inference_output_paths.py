"""Outputs never write over an input and are refused before any work
(found by a new-user trial):

- an input named ``<out>.part`` (the temporary file an output is written
  through) was truncated, then deleted;
- ``--force`` with ``--out`` naming the file a VRT input reads replaced it;
- an ``--out`` that is a folder ran the whole scene, then ended in an
  ``IsADirectoryError`` traceback;
- the checkpoint converters: the same folder and ``.part`` cases.

And two notes: a scene without any georeferencing, and ``--stats``
replacing the statistics a checkpoint carries."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from helpers import run_tool_main
from inference_models import (file_digest, pixel_seg_checkpoint,
                              write_geotiff)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    _, cfg_path, ckpt = pixel_seg_checkpoint(
        tmp_path_factory.mktemp('outpaths'), inference=dict(
            dtype=dict(opt='uint8'),
            stats=dict(opt=dict(mean=[100., 110., 120.],
                                std=[50., 55., 60.]))))
    return cfg_path, ckpt


def _scene(path, **kw):
    """A georeferenced uint8 GeoTIFF at ``path`` (any name, e.g. a .part)."""
    rng = np.random.default_rng(0)
    tif = write_geotiff(str(path) + '.tif', rng.integers(
        0, 250, (40, 48, 3)).astype(np.uint8), **kw)
    os.replace(tif, path)
    return str(path)


def _error(capsys):
    """The one ``error:`` line of a refused run (library warnings aside)."""
    lines = [ln for ln in capsys.readouterr().err.splitlines()
             if ln.startswith('error: ')]
    assert len(lines) == 1, lines
    return lines[0]


def _infer(model, *argv):
    cfg_path, ckpt = model
    return run_tool_main('infer', [cfg_path, ckpt, *argv, '--quiet'])


def test_input_named_like_the_temporary_file_is_kept(model, tmp_path,
                                                      capsys):
    src = _scene(tmp_path / 'scene.tif.part')
    digest = file_digest(src)
    assert _infer(model, src, '--out', tmp_path / 'scene.tif') == 1
    assert 'temporary file' in _error(capsys)
    assert osp.isfile(src) and file_digest(src) == digest
    assert not (tmp_path / 'scene.tif').exists()
    # the probabilities file too: m_probs.tif is written via m_probs.tif.part
    probs_src = _scene(tmp_path / 'm_probs.tif.part')
    digest = file_digest(probs_src)
    assert _infer(model, probs_src, '--out', tmp_path / 'm.tif',
                  '--probs') == 1
    assert file_digest(probs_src) == digest
    assert not (tmp_path / 'm.tif').exists()


def _write_vrt(src, vrt):
    """A hand-written GDAL VRT of ``src``'s 3 bands (relative source path)."""
    import rasterio
    with rasterio.open(src) as ds:
        h, w = ds.height, ds.width
        gt = ', '.join(repr(v) for v in ds.transform.to_gdal())
        wkt = ds.crs.to_wkt()
    bands = ''.join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><SimpleSource>'
        f'<SourceFilename relativeToVRT="1">{osp.basename(src)}'
        f'</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource>'
        '</VRTRasterBand>' for b in (1, 2, 3))
    with open(vrt, 'w') as f:
        f.write(f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">'
                f'<SRS>{wkt}</SRS><GeoTransform>{gt}</GeoTransform>'
                f'{bands}</VRTDataset>')


def test_file_a_vrt_reads_is_never_overwritten(model, tmp_path, capsys):
    import rasterio
    src = _scene(tmp_path / 'src.tif')
    vrt = tmp_path / 'scene.vrt'
    _write_vrt(src, vrt)
    with rasterio.open(vrt) as ds:  # the reference: GDAL's own list
        assert any(osp.samefile(f, src) for f in ds.files)
    digest = file_digest(src)
    assert _infer(model, vrt, '--out', src, '--force') == 1
    assert f"which the input '{vrt}' reads" in _error(capsys)
    assert file_digest(src) == digest
    # a fresh output next to it runs
    assert _infer(model, vrt, '--out', tmp_path / 'map.tif').task == \
        'segmentation'


@pytest.mark.parametrize('which', ['out', 'probs', 'show'])
def test_folder_output_is_refused_before_any_work(model, tmp_path, capsys,
                                                  which):
    src = _scene(tmp_path / 'in.tif')
    out = tmp_path / 'o.tif'
    extra = []
    if which == 'out':
        out.mkdir()
    elif which == 'probs':
        (tmp_path / 'o_probs.tif').mkdir()
        extra = ['--probs']
    else:
        (tmp_path / 'q.png').mkdir()
        extra = ['--show', tmp_path / 'q.png']
    assert _infer(model, src, '--out', out, '--force', *extra) == 1
    assert 'is a folder; give a file path' in _error(capsys)
    # nothing written: no map, no temporary file
    assert which == 'out' or not out.exists()
    assert not list(tmp_path.glob('*.part'))


def test_converters_refuse_folder_and_temporary_file(tmp_path, capsys):
    from mmringmoe.models.pruning.checkpoint import check_output_path
    ckpt = tmp_path / 'in.pth'
    ckpt.write_bytes(b'x')
    (tmp_path / 'dir.pth').mkdir()
    with pytest.raises(ValueError, match='is a folder'):
        check_output_path(str(tmp_path / 'dir.pth'), str(ckpt), True)
    part = tmp_path / 'out.pth.part'
    shutil.copy(ckpt, part)
    with pytest.raises(ValueError, match='temporary file'):
        check_output_path(str(tmp_path / 'out.pth'), str(part), True)
    # the MindSpore converters write through OUT.part too
    # (refused for that, not for the unreadable bytes)
    code = run_tool_main('model_converters/mindspore_to_mmringmoe',
                         [part, tmp_path / 'out.pth'])
    assert 'its temporary file' in str(code)
    ms_part = tmp_path / 'out.ckpt.part'
    shutil.copy(ckpt, ms_part)
    capsys.readouterr()
    assert run_tool_main('model_converters/mmringmoe_to_mindspore',
                         [ms_part, tmp_path / 'out.ckpt']) == 1
    assert 'its temporary file' in capsys.readouterr().err
    assert part.read_bytes() == ms_part.read_bytes() == b'x'


def test_no_georeferencing_is_noted(model, tmp_path, capsys):
    import rasterio
    path = str(tmp_path / 'plain.tif')
    arr = np.random.default_rng(0).integers(0, 250, (3, 40, 48)).astype(
        np.uint8)
    with rasterio.open(path, 'w', driver='GTiff', height=40, width=48,
                       count=3, dtype='uint8') as ds:
        ds.write(arr)
    assert _infer(model, path, '--out', tmp_path / 'o.tif').task == \
        'segmentation'
    notes = [ln for ln in capsys.readouterr().err.splitlines()
             if ln.startswith('note:')]
    assert notes == [f'note: {path} has no georeferencing (no CRS, '
                     'transform, GCPs or RPCs), so the output is in pixel '
                     'coordinates']
    # a georeferenced scene: no note
    assert _infer(model, _scene(tmp_path / 'geo.tif'), '--out',
                  tmp_path / 'g.tif').task == 'segmentation'
    assert 'note:' not in capsys.readouterr().err


def test_stats_replacing_the_checkpoints_is_noted(model, tmp_path, capsys):
    import json
    stats = tmp_path / 's.json'
    stats.write_text(json.dumps(dict(opt=dict(
        mean=[0., 0., 0.], std=[1., 1., 1.], dtype='uint8'))))
    assert _infer(model, _scene(tmp_path / 'in.tif'), '--out',
                  tmp_path / 'o.tif', '--stats', stats).task == 'segmentation'
    notes = [ln for ln in capsys.readouterr().err.splitlines()
             if ln.startswith('note:')]
    assert len(notes) == 1 and f'statistics file {stats}' in notes[0]
    assert "carries for dtype" not in notes[0] and 'opt' in notes[0]


def test_sigterm_removes_the_partial_output(model, tmp_path, monkeypatch):
    """SIGTERM in the middle of a scene (sent at the first progress update,
    i.e. after the output's .part file was opened) ends with exit code 143
    and leaves neither the .part file nor an output; before, the .part
    stayed behind."""
    import importlib
    import signal
    progress = importlib.import_module('mmringmoe.visualization.progress')
    seen = {}

    class Killer:
        n = 0

        def update(self, k):
            seen['parts'] = sorted(p.name for p in tmp_path.glob('*.part'))
            os.kill(os.getpid(), signal.SIGTERM)

        def close(self):
            pass

    monkeypatch.setattr(progress, 'progress_counter',
                        lambda *a, **k: Killer())
    src = _scene(tmp_path / 'in.tif')
    before = signal.getsignal(signal.SIGTERM)
    assert _infer(model, src, '--out', tmp_path / 'o.tif', '--crop', 16,
                  '--probs') == 143
    assert seen['parts'] == ['o.tif.part', 'o_probs.tif.part']
    assert not list(tmp_path.glob('*.part'))
    assert not (tmp_path / 'o.tif').exists()
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored


def test_summary_names_every_output_and_all_nodata_is_noted(model, tmp_path,
                                                            capsys):
    rng = np.random.default_rng(0)
    img = rng.integers(1, 250, (40, 48, 3)).astype(np.uint8)
    src = write_geotiff(tmp_path / 'a.tif', img, nodata=0)
    out = tmp_path / 'o.tif'
    _infer(model, src, '--out', out, '--probs')
    got = capsys.readouterr()
    assert f"-> {out}, {tmp_path / 'o_probs.tif'}" in got.out
    assert 'note:' not in got.err
    empty = write_geotiff(tmp_path / 'e.tif', np.zeros_like(img), nodata=0)
    _infer(model, empty, '--out', tmp_path / 'e_map.tif')
    assert [ln for ln in capsys.readouterr().err.splitlines()
            if ln.startswith('note:')] == [
        f'note: every window of {empty} is nodata, so every output pixel '
        'is nodata']


def test_output_path_ending_in_a_separator_is_a_folder(model, tmp_path,
                                                       capsys):
    """``newdir/`` (a folder that does not exist yet): refused first, by
    scene inference and by the checkpoint converters (found by a new-user
    trial: dcp_to_backbone and extract_modality converted, then printed a
    28-line traceback from torch.save)."""
    from mmringmoe.models.pruning.checkpoint import check_output_path
    src = _scene(tmp_path / 'in.tif')
    assert _infer(model, src, '--out', f'{tmp_path}/newdir/') == 1
    assert 'is a folder; give a file path' in _error(capsys)
    ckpt = tmp_path / 'in.pth'
    ckpt.write_bytes(b'x')
    with pytest.raises(ValueError, match='is a folder'):
        check_output_path(f'{tmp_path}/newdir/', str(ckpt), True)
    assert not (tmp_path / 'newdir').exists()


def test_notes_survive_an_ignore_filter(model, tmp_path, capsys):
    """``-W ignore`` / ``PYTHONWARNINGS=ignore`` silence library warnings,
    not the notes about the user's data."""
    import warnings
    import rasterio
    path = str(tmp_path / 'plain.tif')
    with rasterio.open(path, 'w', driver='GTiff', height=40, width=48,
                       count=3, dtype='uint8') as ds:
        ds.write(np.zeros((3, 40, 48), np.uint8) + 7)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        _infer(model, path, '--out', tmp_path / 'o.tif')
        assert warnings.filters[0][0] == 'ignore'  # the caller's filters kept
    assert f'note: {path} has no georeferencing' in capsys.readouterr().err


@pytest.mark.parametrize('python_flags', [[], ['-W', 'ignore']])
def test_stderr_of_a_run_holds_only_what_concerns_the_data(
        model, tmp_path, python_flags):
    """A fresh ``python tools/infer.py``: no upstream deprecation notices
    (pkg_resources, mmseg's build_loss / avg_non_ignore), and the note about
    the scene, with or without ``-W ignore``."""
    import subprocess
    import sys
    import rasterio
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    path = str(tmp_path / 'plain.tif')
    with rasterio.open(path, 'w', driver='GTiff', height=40, width=48,
                       count=3, dtype='uint8') as ds:
        ds.write(np.zeros((3, 40, 48), np.uint8) + 7)
    from mmengine.config import Config
    cfg = Config.fromfile(model[0])  # the test model, importable from tests/
    (tmp_path / 'test_models.py').write_text(
        'import inference_models\ninference_models._register()\n')
    cfg.custom_imports = dict(imports=['mmringmoe', 'test_models'],
                              allow_failed_imports=False)
    cfg_path, ckpt = str(tmp_path / 'cfg.py'), model[1]
    cfg.dump(cfg_path)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    env['PYTHONPATH'] = os.pathsep.join([osp.join(root, 'tests'),
                                         str(tmp_path)])
    run = subprocess.run(
        [sys.executable, *python_flags, osp.join(root, 'tools', 'infer.py'),
         cfg_path, ckpt, path, '--out', str(tmp_path / 'o.tif'), '--quiet'],
        capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    # nor mmengine's checkpoint-backend print and function-registry warning
    assert run.stdout.splitlines() == [
        f"segmentation: 4 windows (0 all-nodata skipped) -> {tmp_path / 'o.tif'}"
    ], run.stdout
    assert run.stderr.splitlines() == [
        f'note: {path} has no georeferencing (no CRS, transform, GCPs or '
        'RPCs), so the output is in pixel coordinates'], run.stderr


def test_crop_under_half_the_models_window_is_noted(model, tmp_path, capsys):
    """The test model was made for 32 x 32 windows (its config's
    crop_size): --crop 8 gives one note naming both sizes and the source;
    16 (half) and 32 give none."""
    scene = _scene(tmp_path / 'in.tif')
    for i, (crop, noted) in enumerate(((8, True), (16, False), (32, False),
                                       (40, False))):
        _infer(model, scene, '--out', tmp_path / f'o{i}.tif', '--crop', crop,
               '--overlap', 0)
        notes = [ln for ln in capsys.readouterr().err.splitlines()
                 if ln.startswith('note:')]
        expected = [f'note: --crop {crop}x{crop} (crop=) is under half the '
                    "32x32 window the model was made for (the config's "
                    'crop_size); each window gives it less context than '
                    'that'] if noted else []
        assert notes == expected, crop


def test_model_crop_sources_in_order():
    """meta['inference']['test_crop'] > model.test_cfg.crop_size >
    model.data_preprocessor.size > crop_size; none: 512 and no source (so
    no note)."""
    from mmengine.config import Config
    from mmringmoe.apis.model_spec import _crop_and_source
    full = Config(dict(model=dict(test_cfg=dict(crop_size=(64, 48)),
                                  data_preprocessor=dict(size=(96, 96))),
                       crop_size=(128, 128)))
    assert _crop_and_source(full, dict(inference=dict(test_crop=[20, 24]))) \
        == ((20, 24), "the checkpoint's meta['inference']['test_crop']")
    assert _crop_and_source(full, {}) == (
        (64, 48), "the config's model.test_cfg.crop_size")
    full.model.test_cfg = dict(mode='whole')
    assert _crop_and_source(full, {}) == (
        (96, 96), "the config's model.data_preprocessor.size")
    full.model.data_preprocessor = {}
    assert _crop_and_source(full, {}) == ((128, 128),
                                          "the config's crop_size")
    assert _crop_and_source(Config(dict(model=dict())), {}) == ((512, 512),
                                                                 None)
