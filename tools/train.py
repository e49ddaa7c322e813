"""Train a model from a config of mmringmoe or of any OpenMMLab 2.0 toolbox.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]

The config's ``default_scope`` (mmpretrain, mmseg, mmdet, mmrotate or
mmringmoe) selects whose registries the runner builds from. Checkpoints are
written so that they load with ``weights_only=True`` (README, "Checkpoints and
resuming"). Bad input ends with one ``error: ...`` line and exit code 1.
"""
import argparse
import os
import os.path as osp
import sys

if __package__ in (None, ''):  # run as a script from a source checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmringmoe.engine.cli import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or without a value from the latest '
        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the total batch size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config settings, key=value in xxx=yyy format')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args):
    from mmringmoe.engine import cli
    cfg = cli.load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise cli.UserError('--amp needs a GPU; none is visible')
        kind = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if kind not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise cli.UserError(f'--amp works with OptimWrapper, the config '
                                f'uses {kind}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise cli.UserError('--auto-scale-lr: the config has no '
                                'auto_scale_lr (base_batch_size) setting')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    load_from = cfg.get('load_from', None)
    if load_from and '://' not in load_from:
        # a file, or a sharded directory for a sharded strategy
        from mmringmoe.engine.dist_checkpoint import \
            check_checkpoint_for_config
        check_checkpoint_for_config(load_from, cfg, bool(cfg.get('resume')))
    cli.add_checkpoint_hook(cfg)
    cli.add_inference_meta_hook(cfg)
    return cfg


def train(args):
    """Train; returns the runner's model. Raises instead of printing."""
    from mmringmoe.engine import cli
    cfg = build_config(args)
    cli.import_scope(cfg)
    cli.check_mmringmoe_types(cfg)
    cli.check_pretrained_paths(cfg)
    cli.scope_prefixed_types(cfg)
    runner = None
    try:
        runner = cli.build_runner(cfg)
        return runner.train()
    finally:
        cli.release(runner)


def main(argv=None):
    from mmringmoe.engine.cli import run_cli
    return run_cli(train, parse_args(argv))


if __name__ == '__main__':
    main()
