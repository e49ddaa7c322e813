"""Argument and file handling shared by ``tools/model_converters``."""
import argparse
import os
import sys

from .checkpoint import (check_output_path, describe, format_count,
                         load_checkpoint, print_counts, report_load,
                         save_checkpoint)


def parser(description):
    p = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return p


def add_common(p):
    p.add_argument('--force', action='store_true',
                   help='overwrite OUT if it exists (never an input file)')
    p.add_argument('--min-loaded', type=float, default=None,
                   help='refuse an input that fills less than this share of '
                   "the model's parameter values (default 0.9)")


def read(path, args):
    """The backbone of ``path`` (one wrapping prefix stripped) and its
    described architecture; prints how much of that model the file fills
    and refuses below ``--min-loaded``."""
    meta, state_dict = load_checkpoint(path)
    meta = describe(state_dict, meta)
    report_load(meta, state_dict, path, getattr(args, 'min_loaded', None))
    return meta, state_dict


def write(out, meta, state_dict, before, what):
    # the output must rebuild the model its meta describes, every tensor
    report_load(meta, state_dict, f'{out} (output)', 1.0)
    save_checkpoint(out, meta, state_dict)
    print_counts(before, state_dict, what)
    print(f'wrote {out} (modalities {meta["modalities"]}, '
          f'moe_mode {meta["moe_mode"]})')


def run(main, argv=None):
    """``main(argv)`` as a command: a refused input (``ValueError``, which
    includes ``CheckpointError``, or a missing / existing file) ends with one
    ``error: ...`` line on stderr and exit code 1 instead of a traceback.
    ``MMRINGMOE_DEBUG=1`` shows the traceback. Returns main's exit code."""
    from mmringmoe.engine.cli import _one_line
    if os.environ.get('MMRINGMOE_DEBUG', '0') == '1':
        return main(argv)
    try:
        return main(argv)
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError) as e:
        print(f'error: {_one_line(e)}', file=sys.stderr)
        return 1


def parse_channels(items):
    """``['ms=4', 'sar_l1=8']`` -> ``{'ms': 4, 'sar_l1': 8}``."""
    out = {}
    for item in items or []:
        name, _, value = item.partition('=')
        if not value.isdigit():
            raise ValueError(f'--in-channels expects MODALITY=N, got {item!r}')
        out[name] = int(value)
    return out


__all__ = ['parser', 'add_common', 'read', 'write', 'check_output_path', 'run',
           'parse_channels', 'format_count']
