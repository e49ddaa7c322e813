"""Evaluate a checkpoint with a config of mmringmoe or of any OpenMMLab 2.0
toolbox.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR [--show-interval N]]
                                           [--cfg-options k=v ...] [--launcher pytorch]

``main`` returns the metrics dict. Bad input ends with one ``error: ...`` line
and exit code 1.
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
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument('--show-dir',
                        help='save painted predictions into this folder')
    parser.add_argument('--show-interval', type=int, default=1,
                        help='with --show-dir: paint every N-th test image')
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
    from mmringmoe.engine.dist_checkpoint import check_checkpoint_for_config
    cfg = cli.load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if '://' not in args.checkpoint:
        # a file, or a sharded checkpoint directory (its weights)
        check_checkpoint_for_config(args.checkpoint, cfg, resume=False)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    # counts what the checkpoint fills of the model, refuses a wrong file
    cli.add_checkpoint_hook(cfg)
    return cfg


def test(args):
    """Evaluate; returns the metrics dict. Raises instead of printing."""
    from mmringmoe.engine import cli
    cfg = build_config(args)
    cli.import_scope(cfg)
    if args.show_dir:  # every task and modality: mmringmoe's own hook
        from mmringmoe.engine.hooks.rs_visualization_hook import \
            configure_show_dir
        configure_show_dir(cfg, args.show_dir, args.show_interval)
    cli.check_mmringmoe_types(cfg)
    cli.check_pretrained_paths(cfg)
    cli.scope_prefixed_types(cfg)
    runner = None
    try:
        runner = cli.build_runner(cfg)
        return runner.test()
    finally:
        cli.release(runner)


def main(argv=None):
    from mmringmoe.engine.cli import run_cli
    return run_cli(test, parse_args(argv))


if __name__ == '__main__':
    main()
