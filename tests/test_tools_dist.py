"""tools/dist_train.sh and dist_test.sh build the torchrun command (the run
itself needs GPUs: mmengine's pytorch launcher sets a CUDA device)."""
import os
import os.path as osp
import subprocess

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _command(script, *args, **env):
    out = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', script), *args],
        env=dict(os.environ, PYTHON='echo', **env), capture_output=True,
        text=True, check=True).stdout.split()
    return out


def test_dist_train_command():
    cmd = _command('dist_train.sh', 'cfg.py', '4', '--amp', PORT='29877')
    assert cmd[:2] == ['-m', 'torch.distributed.run']
    assert '--nproc_per_node=4' in cmd and '--master_port=29877' in cmd
    i = cmd.index(osp.join(ROOT, 'tools', 'train.py'))
    assert cmd[i + 1:] == ['cfg.py', '--launcher', 'pytorch', '--amp']


def test_dist_test_command_gpus_from_env():
    cmd = _command('dist_test.sh', 'cfg.py', 'x.pth', '--show-dir', 'vis', GPUS='2')
    assert '--nproc_per_node=2' in cmd and '--master_port=29500' in cmd
    i = cmd.index(osp.join(ROOT, 'tools', 'test.py'))
    assert cmd[i + 1:] == ['cfg.py', 'x.pth', '--launcher', 'pytorch',
                           '--show-dir', 'vis']


def test_usage_without_config():
    res = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh')],
                         capture_output=True, text=True)
    assert res.returncode == 2 and 'usage' in res.stderr
