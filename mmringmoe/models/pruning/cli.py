"""Argument and file handling shared by ``tools/model_converters``."""
import argparse

from .checkpoint import (check_output_path, describe, format_count,
                         load_checkpoint, print_counts, save_checkpoint)


def parser(description):
    p = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return p


def add_common(p):
    p.add_argument('--force', action='store_true',
                   help='overwrite OUT if it exists (never an input file)')


def read(path, args):
    meta, state_dict = load_checkpoint(path)
    return describe(state_dict, meta), state_dict


def write(out, meta, state_dict, before, what):
    save_checkpoint(out, meta, state_dict)
    print_counts(before, state_dict, what)
    print(f'wrote {out} (modalities {meta["modalities"]}, '
          f'moe_mode {meta["moe_mode"]})')


def parse_channels(items):
    """``['ms=4', 'sar_l1=8']`` -> ``{'ms': 4, 'sar_l1': 8}``."""
    out = {}
    for item in items or []:
        name, _, value = item.partition('=')
        if not value.isdigit():
            raise ValueError(f'--in-channels expects MODALITY=N, got {item!r}')
        out[name] = int(value)
    return out


__all__ = ['parser', 'add_common', 'read', 'write', 'check_output_path',
           'parse_channels', 'format_count']
