"""A sharded FSDP checkpoint directory -> the single-file RingMoE backbone.

    python tools/model_converters/dcp_to_backbone.py \
        work_dirs/simmim_ringmoe-1b-fsdp/iter_100000.pth ringmoe-1b.pth

INPUT is a directory written by ``torch.distributed.checkpoint`` (the FSDP
pretraining config's ``mmringmoe.ShardedMetaInitFSDPStrategy``: ``.metadata``,
one ``__<rank>_0.distcp`` per saving rank, ``extra.pth``). One process,
no process group: only the backbone's tensors (``model.backbone.*``; a
checkpoint of a bare backbone, ``model.*``, works too) are read, at their
global shapes and stored dtypes, whatever the number of ranks that saved
them. Decoders, heads and the optimizer state are left out.

OUTPUT is ``{'meta': ..., 'state_dict': backbone keys}`` like the other
converters (``torch.load(weights_only=True)`` reads it; ``meta`` describes the
architecture read from the shapes and keeps the run's meta as
``source_meta``), the input of ``collect_expert_usage.py``,
``prune_experts.py``, ``merge_experts.py`` and ``extract_modality.py``.
The output must not exist (``--force`` overwrites a file, never the input).
"""
import os.path as osp
import sys

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from mmringmoe.engine.checkpoint import load_weights_only
from mmringmoe.engine.dist_checkpoint import (EXTRA, SafeFileSystemReader,
                                              read_metadata)
from mmringmoe.models.pruning.checkpoint import describe, plain, report_load
from mmringmoe.models.pruning.cli import (add_common, check_output_path,
                                          parser, write)

PREFIXES = ('model.backbone.', 'model.')


def read_backbone(path):
    """``(meta, state_dict)``: the backbone tensors of a sharded checkpoint.

    ``.metadata`` is unpickled with only torch's checkpoint classes
    allowed, tensors with ``weights_only=True``
    (:class:`~mmringmoe.engine.dist_checkpoint.SafeFileSystemReader`).

    Raises:
        FileNotFoundError: ``path`` is not a sharded checkpoint directory.
        CheckpointError: its ``.metadata`` cannot be read, or a shard file
            is missing or truncated.
        ValueError: it holds no ``model.backbone.`` / ``model.`` RingMoE keys.
    """
    metadata = read_metadata(path)
    tensors = {k: md for k, md in metadata.state_dict_metadata.items()
               if isinstance(md, TensorStorageMetadata)}
    for prefix in PREFIXES:
        keys = [k for k in tensors if k.startswith(prefix)
                and k[len(prefix):].startswith('patch_embed.')]
        if keys:
            break
    else:
        found = sorted(tensors)[:3]
        raise ValueError(f'{path}: no RingMoE backbone in the checkpoint '
                         f'(expected "model.backbone.patch_embed.*" keys, '
                         f'found e.g. {found})')
    skip = ('model.backbone.', ) if prefix == 'model.' else ()
    state_dict = {k[len(prefix):]: torch.empty(tensors[k].size,
                                               dtype=tensors[k].properties.dtype)
                  for k in tensors if k.startswith(prefix) and not k.startswith(skip)}
    inner = prefix[len('model.'):]
    # dcp.load fills the given tensors in place
    dcp.load({'model': {inner + name: t for name, t in state_dict.items()}},
             storage_reader=SafeFileSystemReader(path), no_dist=True)
    meta = {}
    extra = osp.join(path, EXTRA)
    if osp.isfile(extra):
        meta = {'source_meta': plain(load_weights_only(extra).get('meta', {}))}
    return describe(state_dict, meta), state_dict


def main(argv=None):
    p = parser(__doc__)
    p.add_argument('input', help='sharded checkpoint directory')
    p.add_argument('output', help='new single-file backbone checkpoint')
    add_common(p)
    args = p.parse_args(argv)
    check_output_path(args.output, args.input, args.force)
    meta, state_dict = read_backbone(args.input)
    report_load(meta, state_dict, args.input, args.min_loaded)
    write(args.output, meta, state_dict, state_dict,
          f'backbone of the sharded checkpoint {args.input}')


if __name__ == '__main__':
    from mmringmoe.models.pruning.cli import run
    sys.exit(run(main))
