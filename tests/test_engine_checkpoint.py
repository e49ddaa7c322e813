"""mmringmoe.engine.checkpoint: weights-only encoding and loading."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModule
from mmengine.runner import load_checkpoint
from torch import nn

from mmringmoe.engine.checkpoint import (CheckpointError, decode, encode,
                                         load_weights_only)


class Pickled:
    """Stands for any Python object a checkpoint should not carry."""


def test_message_hub_round_trip_through_weights_only_file(tmp_path):
    hub = MessageHub(f'round_trip_{id(tmp_path)}')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(1.5 - i), count=2)
    hub.update_info('iter', 3)
    hub.update_info('palette', np.array([[1, 2, 3]], dtype=np.uint8))
    state = hub.state_dict()
    checkpoint = {'message_hub': state, 'meta': {'lr': np.float32(0.5),
                                                   'ids': {1, 2}}}
    path = tmp_path / 'c.pth'
    torch.save(encode(checkpoint), path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    back = load_weights_only(path)
    buf = back['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    ref = state['log_scalars']['train/loss']
    np.testing.assert_array_equal(buf.data[0], ref.data[0])
    np.testing.assert_array_equal(buf.data[1], ref.data[1])
    assert buf.data[0].dtype == ref.data[0].dtype and buf.max_length == ref.max_length
    palette = back['message_hub']['runtime_info']['palette']
    assert palette.dtype == np.uint8 and palette.tolist() == [[1, 2, 3]]
    assert back['meta'] == {'lr': 0.5, 'ids': {1, 2}}
    MessageHub(f'restored_{id(tmp_path)}').load_state_dict(back['message_hub'])


def test_state_dict_metadata_survives():
    state = nn.BatchNorm1d(2).state_dict()
    again = decode(encode(state))
    assert isinstance(again, OrderedDict) and again._metadata == state._metadata
    assert all(torch.equal(state[k], again[k]) for k in state)


def test_refused_and_foreign_files(tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'meta': Pickled()}, bad)
    with pytest.raises(CheckpointError) as err:
        load_weights_only(bad)
    message = str(err.value)
    assert '\n' not in message and 'Pickled' in message and str(bad) in message
    text = tmp_path / 'notes.pth'
    text.write_text('hello')
    with pytest.raises(CheckpointError, match='is not a PyTorch checkpoint'):
        load_weights_only(text)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_weights_only(tmp_path / 'missing.pth')


def test_pretrained_init_cfg_loads_weights_only(tmp_path):
    src = nn.Linear(3, 2)
    good, bad = tmp_path / 'good.pth', tmp_path / 'bad.pth'
    weights = {f'fc.{k}': v for k, v in src.state_dict().items()}
    torch.save({'state_dict': weights}, good)
    torch.save({'state_dict': weights, 'extra': Pickled()}, bad)

    class Net(BaseModule):
        def __init__(self, checkpoint):
            super().__init__(init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint)))
            self.fc = nn.Linear(3, 2)

    net = Net(good)
    net.init_weights()
    assert torch.equal(net.fc.weight, src.weight)
    with pytest.raises(CheckpointError, match='refusing to load'):
        Net(bad).init_weights()
    with pytest.raises(CheckpointError, match='refusing to load'):
        load_checkpoint(nn.Linear(3, 2), str(bad))


def test_messages_name_the_checkpoint_resumed_without_a_path(tmp_path):
    """``--resume`` alone: the generator-state warning and the load line
    name the work dir's latest checkpoint (mmengine's ``last_checkpoint``),
    not 'checkpoint' (found by a new-user trial)."""
    from types import SimpleNamespace

    from mmringmoe.engine.checkpoint import _resumed_path
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    auto = SimpleNamespace(_load_from=None, _resume=True,
                           work_dir=str(tmp_path))
    assert _resumed_path(auto) == str(ckpt)
    given = SimpleNamespace(_load_from='a.pth', _resume=True,
                            work_dir=str(tmp_path))
    assert _resumed_path(given) == 'a.pth'
    neither = SimpleNamespace(_load_from=None, _resume=False,
                              work_dir=str(tmp_path))
    assert _resumed_path(neither) == 'checkpoint'


def test_fit_state_dict_counts_without_an_excluded_submodule():
    """collect_expert_usage.py reports a whole-model checkpoint's tensors
    besides the backbone against the model besides the backbone (a trial
    saw 'loaded 8/412 parameter tensors ... 7.3%' for a complete file)."""
    import torch.nn as nn
    from mmringmoe.engine.checkpoint import fit_state_dict
    model = nn.Module()
    model.backbone = nn.Linear(4, 3)   # 15 values, loaded by itself
    model.head = nn.Linear(3, 2)       # 8 values
    head = {'head.weight': torch.ones(2, 3), 'head.bias': torch.ones(2)}
    whole = fit_state_dict(model, head, prefixes=())
    assert (whole.loaded, whole.total) == (2, 4)
    assert (whole.loaded_numel, whole.total_numel) == (8, 23)
    rest = fit_state_dict(model, head, prefixes=(), exclude=model.backbone)
    assert (rest.loaded, rest.total) == (2, 2)
    assert (rest.loaded_numel, rest.total_numel) == (8, 8)
    assert set(rest.state_dict) == {'head.weight', 'head.bias'}
    # a backbone tensor is not matched when the backbone is excluded
    more = dict(head, **{'backbone.weight': torch.zeros(3, 4)})
    assert 'backbone.weight' not in fit_state_dict(
        model, more, prefixes=(), exclude=model.backbone).state_dict


@pytest.mark.parametrize('file_mode,model_mode,hint', [
    ('sparse', 'dense', 'merge the experts first '
     '(tools/model_converters/merge_experts.py --method kc)'),
    ('dense', 'sparse', 'upcycle the file '
     '(tools/model_converters/swinv2_to_ringmoe.py)')])
def test_sparse_file_for_dense_model_names_the_converter(file_mode,
                                                         model_mode, hint):
    from helpers import tiny_backbone
    from mmringmoe.engine.checkpoint import (PretrainedLoadError,
                                             check_report, fit_state_dict)
    from mmringmoe.models import RingMoE

    def build(mode):
        cfg = tiny_backbone(moe_mode=mode)
        cfg.pop('type')
        return RingMoE(**cfg)
    report = fit_state_dict(build(model_mode), build(file_mode).state_dict())
    with pytest.raises(PretrainedLoadError) as err:
        check_report(report, 'f.pth', 'RingMoE', min_loaded=0.99)
    assert str(err.value).startswith('f.pth fills only ')
    assert str(err.value).endswith(hint + (
        " or build the model with moe_mode='sparse'"
        if model_mode == 'dense' else ''))
    # a file that fits says nothing of the kind
    report = fit_state_dict(build(model_mode), build(model_mode).state_dict())
    check_report(report, 'f.pth', 'RingMoE', min_loaded=0.99)
