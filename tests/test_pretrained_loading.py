"""Pretrained weights that load nothing (issue 13 item 4).

Every load path counts what it filled of the model, strips one wrapping
prefix (``backbone.``, ``module.``, ``model.``) and refuses a file that fills
less than ``min_loaded`` of the model's parameter values."""
import contextlib
import logging
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.model.weight_init import PretrainedInit
from pruning_common import converter

import toy_engine
from helpers import run_test, run_tool_main, run_train
from mmringmoe.engine.checkpoint import (DEFAULT_MIN_LOADED,
                                         PretrainedLoadError, fit_state_dict,
                                         load_pretrained)
from mmringmoe.models import RingMoE
from mmringmoe.registry import MODELS

MODS = ('opt', 'ms')
TOY = osp.join(osp.dirname(__file__), 'toy_config.py')


@pytest.fixture(scope='module')
def pretrain_ckpt(tmp_path_factory):
    """A whole-model MIM checkpoint as pretraining writes it: ``backbone.*``,
    ``neck.*`` keys under ``state_dict``."""
    import mmringmoe.models  # noqa: F401
    torch.manual_seed(0)
    mim = MODELS.build(dict(
        type='mmringmoe.RingMoEMIM',
        backbone=dict(type='mmringmoe.RingMoE', arch='tiny', modalities=MODS,
                      out_indices=(3, )),
        data_preprocessor=dict(type='mmringmoe.RingMoEMIMDataPreprocessor',
                               modalities=MODS)))
    # as after training: no value equals a fresh initialisation by chance
    # (LayerNorm ones, zero biases)
    sd = OrderedDict((k, v + 0.01 * torch.randn_like(v)
                      if v.is_floating_point() else v)
                     for k, v in mim.state_dict().items())
    assert any(k.startswith('neck.') for k in sd)
    path = tmp_path_factory.mktemp('ckpt') / 'mim.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': sd}, path)
    return path, sd


def _backbone(**kw):
    torch.manual_seed(123)  # other random weights than the checkpoint
    return RingMoE('tiny', modalities=('opt', ), **kw)


def _equal_to_ckpt(model, sd, prefix='backbone.'):
    """(parameters equal to the checkpoint's, parameters the checkpoint has)"""
    own = model.state_dict()
    params = {n for n, _ in model.named_parameters()}
    present = {k for k in params if prefix + k in sd}
    same = {k for k in present if torch.equal(own[k], sd[prefix + k])}
    return len(same), len(present)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _logged():
    """Messages of mmengine's current logger (its console handler keeps the
    stream it was created with, which capsys does not see)."""
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def test_whole_model_checkpoint_as_backbone_init_cfg(pretrain_ckpt):
    path, sd = pretrain_ckpt
    # mmengine's own Pretrained loads nothing from it (the reported bug)
    plain = _backbone()
    PretrainedInit(checkpoint=str(path))(plain)
    assert _equal_to_ckpt(plain, sd)[0] == 0

    model = _backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with _logged() as lines:
        model.init_weights()
    loaded, present = _equal_to_ckpt(model, sd)
    assert loaded == present > 200  # every backbone tensor, values equal
    # the MIM model has only the last stage's norm (out_indices=(3, )): the
    # downstream norm0-2 are the only parameters not in the file
    total = sum(1 for _ in model.parameters())
    assert total - present == 6
    line = [ln for ln in lines if 'parameter tensors of RingMoE' in ln]
    assert len(line) == 1
    assert line[0].startswith(f'{path}: loaded {present}/{total} parameter '
                              'tensors of RingMoE')
    assert "after stripping 'backbone.'" in line[0]


@pytest.mark.parametrize('prefix', ['', 'module.', 'model.', 'module.backbone.'])
def test_single_wrapping_prefixes_are_stripped(pretrain_ckpt, tmp_path, prefix):
    _, sd = pretrain_ckpt
    wrapped = OrderedDict((prefix + k[len('backbone.'):], v)
                          for k, v in sd.items() if k.startswith('backbone.'))
    path = tmp_path / 'w.pth'
    torch.save(wrapped, path)
    model = _backbone()
    report = load_pretrained(model, str(path))
    assert report.prefix == prefix
    assert _equal_to_ckpt(model, sd)[0] == report.loaded == report.total - 6


def test_unrelated_checkpoint_is_refused(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    path = tmp_path / 'resnetish.pth'
    torch.save({'state_dict': other.state_dict()}, path)
    model = _backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PretrainedLoadError) as err:
        model.init_weights()
    message = str(err.value)
    assert '\n' not in message
    assert str(path) in message and 'fills only 0.0%' in message
    assert f'min_loaded={DEFAULT_MIN_LOADED:g}' in message
    # nothing was loaded
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_min_loaded_share(pretrain_ckpt, tmp_path):
    _, sd = pretrain_ckpt
    # the first two stages only: a small share of the values
    part = {k: v for k, v in sd.items()
            if k.startswith(('backbone.patch_embed', 'backbone.stages.0',
                             'backbone.stages.1'))}
    path = tmp_path / 'part.pth'
    torch.save(part, path)
    model = _backbone()
    share = fit_state_dict(model, part).share
    assert 0.01 < share < 0.5
    with pytest.raises(PretrainedLoadError, match='below min_loaded=0.9'):
        load_pretrained(model, str(path))
    low = _backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                  min_loaded=share - 0.01))
    low.init_weights()
    assert torch.equal(low.stages[1].blocks[0].ffn.shared_expert.layers[1].weight,
                       sd['backbone.stages.1.blocks.0.ffn.shared_expert.layers.1.weight'])
    # prefix= (mmengine's argument) keeps working
    pref = _backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                   prefix='backbone', min_loaded=None))
    pref.init_weights()
    assert torch.equal(pref.patch_embed['opt'].projection.weight,
                       sd['backbone.patch_embed.opt.projection.weight'])


def test_load_from_counts_strips_and_refuses(tmp_path, capsys):
    run_train(TOY, tmp_path / 'a', cfg_options={'train_cfg.max_iters': 2})
    sd = torch.load(tmp_path / 'a' / 'iter_2.pth', weights_only=True)['state_dict']
    wrapped = tmp_path / 'wrapped.pth'
    torch.save({'state_dict': {'model.' + k: v for k, v in sd.items()}}, wrapped)
    seen = []
    handler = _Records()
    orig = MMLogger.get_current_instance

    def current():  # the test run's own logger, once the runner made it
        logger = orig()
        if handler not in logger.handlers:
            logger.addHandler(handler)
            seen.append(logger)
        return logger

    MMLogger.get_current_instance = current
    try:
        metrics = run_test(TOY, wrapped, tmp_path / 't')
    finally:
        MMLogger.get_current_instance = orig
        for logger in seen:
            logger.removeHandler(handler)
    out = '\n'.join(handler.lines)
    assert "loaded 4/4 parameter tensors of ToyRegressor" in out
    assert "after stripping 'model.'" in out
    model = toy_engine.ToyRegressor(in_dim=8, hidden=16)
    model.load_state_dict(sd)
    model.eval()
    data = toy_engine.ToyDataset(length=32, in_dim=8, seed=0)
    with torch.no_grad():
        expected = ((model(data.x) - data.y)**2).mean().item()
    assert metrics['mse'] == pytest.approx(expected, rel=1e-5)

    unrelated = tmp_path / 'unrelated.pth'
    torch.save({'state_dict': {'fc.weight': torch.zeros(3, 3)}}, unrelated)
    code = run_tool_main('test', [TOY, unrelated, '--work-dir', tmp_path / 'u'])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: ') and 'fills only 0.0%' in err[-1]
    code = run_tool_main('train', [TOY, '--work-dir', tmp_path / 'v',
                                   '--cfg-options', f'load_from={unrelated}'])
    assert code == 1


def test_converters_report_and_refuse(pretrain_ckpt, tmp_path, capsys):
    path, sd = pretrain_ckpt
    wrapped = tmp_path / 'model_wrapped.pth'
    torch.save({'state_dict': {'model.' + k[len('backbone.'):]: v
                               for k, v in sd.items()
                               if k.startswith('backbone.')}}, wrapped)
    for src in (path, wrapped):
        out = tmp_path / f'opt_{src.stem}.pth'
        handler = _Records()  # the line goes to mmengine's logger, once
        logger = MMLogger.get_current_instance()
        logger.addHandler(handler)
        try:
            converter('extract_modality').main([str(src), str(out),
                                                '--modalities', 'opt'])
        finally:
            logger.removeHandler(handler)
        text = '\n'.join(handler.lines)
        assert text.count(f'{src}: loaded') == 1
        line = text.split(f'{src}: loaded')[1].splitlines()[0]
        assert ' values, 100.0%)' in line, line
        assert f'{out} (output): loaded' in text
    # stage 2's qkv projections under another name: most is filled, refused
    # when asked for more
    renamed = {k.replace('.w_msa.qkv.', '.w_msa.to_qkv.')
               if k.startswith('backbone.stages.2.') else k: v
               for k, v in sd.items()}
    renamed_path = tmp_path / 'renamed.pth'
    torch.save(renamed, renamed_path)
    with pytest.raises(PretrainedLoadError, match='below min_loaded=0.999'):
        converter('extract_modality').main(
            [str(renamed_path), str(tmp_path / 'p.pth'), '--modalities', 'opt',
             '--min-loaded', '0.999'])
    assert not (tmp_path / 'p.pth').exists()
    # a file holding stages 0-1 of the model its meta describes
    from mmringmoe.models.pruning.checkpoint import (describe, report_load,
                                                     strip_prefix)
    full = strip_prefix(sd)
    part = {k: v for k, v in full.items()
            if k.startswith(('patch_embed', 'stages.0.', 'stages.1.'))}
    with pytest.raises(PretrainedLoadError, match='fills only'):
        report_load(describe(full), part, 'part')
    # and tensors that describe no model at all: one line, not a traceback
    with pytest.raises(PretrainedLoadError, match='buildable RingMoE'):
        report_load(describe(part), part, 'part')


def test_fsdp_load_line_does_not_call_tensor_counts_values(monkeypatch):
    """Under FSDP the parameters are flat shards, so a load counts tensors;
    the log line said '304/304 values' for a 20M-value model (new-user
    trial). Plain models keep counting values."""
    import mmringmoe.engine.checkpoint as ck
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    sd = model.state_dict()
    plain = ck.fit_state_dict(model, sd).line('ckpt.pth', 'Sequential')
    assert '(26/26 values, 100.0%)' in plain, plain
    monkeypatch.setattr(ck, '_is_fsdp', lambda m: True)
    monkeypatch.setattr(ck, '_fsdp_state_dict_names', lambda m: dict.fromkeys(sd))
    report = ck.fit_state_dict(model, sd)
    line = report.line('ckpt.pth', 'FullyShardedDataParallel')
    assert 'loaded 4/4 parameter tensors' in line and 'values,' not in line, line
    assert '100.0% of the tensors; FSDP shards, values not counted' in line, line
