"""``run_cli`` (every tool's entry point) destroys a ``torch.distributed``
process group that the tool opened, on return and on a one-line refusal,
and leaves alone one that was open before. A gloo group left to the
interpreter's exit can abort the process with SIGABRT ("terminate called
without an active exception", pytorch/pytorch #190489): a 2-process
``tools/train.py`` DDP run that had finished training failed that way in CI.
"""
import pytest
import torch.distributed as dist

from mmringmoe.engine import cli


def _open_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)


@pytest.fixture(autouse=True)
def _no_group_left():
    assert not dist.is_initialized()
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_group_opened_by_the_tool_is_destroyed(tmp_path):
    def tool(args):
        _open_group(tmp_path)
        assert dist.get_world_size() == 1
        return 'done'

    assert cli.run_cli(tool, None) == 'done'
    assert not dist.is_initialized()


def test_group_destroyed_after_a_refusal(tmp_path, capsys):
    def tool(args):
        _open_group(tmp_path)
        raise cli.UserError('bad input\nsecond line')

    with pytest.raises(SystemExit) as e:
        cli.run_cli(tool, None)
    assert e.value.code == 1
    assert capsys.readouterr().err == 'error: bad input\n'
    assert not dist.is_initialized()


def test_group_destroyed_after_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv('MMRINGMOE_DEBUG', '1')

    def tool(args):
        _open_group(tmp_path)
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        cli.run_cli(tool, None)
    assert not dist.is_initialized()


def test_group_open_before_is_left_alone(tmp_path):
    _open_group(tmp_path)
    cli.run_cli(lambda args: None, None)
    assert dist.is_initialized()  # the caller's: it destroys it (fixture)
