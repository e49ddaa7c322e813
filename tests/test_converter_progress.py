"""Progress bars of the long converters (mmringmoe.visualization.progress):
shown on a terminal with the count of items done, silent with ``quiet`` and
off a terminal."""
import io
import sys

import pytest


class TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize('where', ['tty', 'quiet', 'pipe'])
def test_merge_bar_counts_blocks(monkeypatch, where):
    from mmringmoe.models import RingMoE
    from mmringmoe.models.pruning import merge_experts
    model = RingMoE('tiny', modalities=('opt', ))
    blocks = len(model.rmoe_layers())
    stream = io.StringIO() if where == 'pipe' else TTY()
    monkeypatch.setattr(sys, 'stderr', stream)
    merge_experts(model.state_dict(), 'ks', quiet=where == 'quiet')
    text = stream.getvalue()
    if where == 'tty':
        assert 'KS merge' in text and f'{blocks}/{blocks}' in text, text
    else:
        assert text == ''


@pytest.mark.parametrize('quiet', [False, True])
def test_dfc23_bar_counts_images_per_split(tmp_path, monkeypatch, quiet):
    from downstream_data import make_dfc23_raw
    import dfc23
    raw = str(tmp_path / 'raw')
    make_dfc23_raw(raw, n=10)
    tty = TTY()
    monkeypatch.setattr(sys, 'stderr', tty)
    counts = dfc23.main([raw, '--out-dir', str(tmp_path / 'out')]
                        + (['--quiet'] if quiet else []))
    text = tty.getvalue()
    if quiet:
        assert text == ''
    else:
        for split, n in counts.items():
            assert f'DFC23 {split}' in text and f'{n}/{n}' in text, text
