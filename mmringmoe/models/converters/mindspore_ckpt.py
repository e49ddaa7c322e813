"""Read and write MindSpore ``.ckpt`` files without MindSpore.

A MindSpore checkpoint is a stream of protobuf records following
``mindspore/ccsrc/utils/checkpoint.proto`` (proto2)::

    message Checkpoint {
        message Value {
            required string tag = 1;          // parameter name
            required TensorProto tensor = 2;
            // newer releases: optional MapTensorProto maptensor = 3;
        }
        repeated Value value = 1;
    }
    message TensorProto {
        repeated int64 dims = 1;              // shape; [0] marks a scalar
        required string tensor_type = 2;      // 'Float32', 'Float16', 'BFloat16', 'Int32', ...
        required bytes tensor_content = 3;    // raw little-endian C-order data
    }

``mindspore.save_checkpoint`` serialises one ``Checkpoint`` holding one
``Value`` per record and appends the records, so the file parses as a single
``Checkpoint``; a tensor larger than 512 MiB is split into consecutive records
with the same tag whose contents are concatenated. Only the wire format is
needed to read that: varints and length-delimited fields, decoded here.
"""
import mmap
import os
from collections import OrderedDict
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

#: ``tensor_type`` strings of MindSpore checkpoints and the NumPy dtype of
#: their bytes (BFloat16 is kept as its raw uint16 bit pattern).
MS_TO_NUMPY = OrderedDict([
    ('Float32', np.float32), ('Float16', np.float16), ('Float64', np.float64),
    ('BFloat16', np.uint16),
    ('Int8', np.int8), ('Int16', np.int16), ('Int32', np.int32), ('Int64', np.int64),
    ('UInt8', np.uint8), ('UInt16', np.uint16), ('UInt32', np.uint32), ('UInt64', np.uint64),
    ('Bool', np.bool_),
])
NUMPY_TO_MS = {np.dtype(v).name: k for k, v in MS_TO_NUMPY.items() if k != 'BFloat16'}

#: records above this many content bytes are split, as mindspore does (512 MiB).
DEFAULT_SLICE_BYTES = 512 * 1024 * 1024

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5


class MSTensor(NamedTuple):
    """One checkpoint entry: data (C-order, shaped), its MindSpore type, its stored dims."""
    data: np.ndarray
    tensor_type: str
    dims: Tuple[int, ...]


class CheckpointFormatError(ValueError):
    """The file is not a (plain, unencrypted) MindSpore checkpoint."""


# ----------------------------------------------------------------- wire level
def _read_varint(buf, pos: int, end: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise CheckpointFormatError('truncated varint')
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise CheckpointFormatError('varint longer than 10 bytes')
    if result >= 1 << 63:  # int64 two's complement
        result -= 1 << 64
    return result, pos


def _encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _iter_fields(buf, pos: int, end: int) -> Iterator[Tuple[int, int, object]]:
    """Yield ``(field_number, wire_type, value)``; LEN values are ``(start, stop)``."""
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise CheckpointFormatError(f'invalid field number 0 at byte {pos}')
        if wire == _WIRE_VARINT:
            value, pos = _read_varint(buf, pos, end)
        elif wire == _WIRE_LEN:
            length, pos = _read_varint(buf, pos, end)
            if length < 0 or pos + length > end:
                raise CheckpointFormatError(f'length-delimited field {field} runs past its message')
            value = (pos, pos + length)
            pos += length
        elif wire == _WIRE_I64:
            value, pos = bytes(buf[pos:pos + 8]), pos + 8
        elif wire == _WIRE_I32:
            value, pos = bytes(buf[pos:pos + 4]), pos + 4
        else:
            raise CheckpointFormatError(f'unsupported wire type {wire} (field {field})')
        if pos > end:
            raise CheckpointFormatError('field runs past the end of its message')
        yield field, wire, value


def _len_field(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | _WIRE_LEN) + _encode_varint(len(payload)) + payload


# ------------------------------------------------------------------- reading
def _parse_tensor(buf, start: int, stop: int):
    dims: List[int] = []
    tensor_type = None
    content = (start, start)
    for field, wire, value in _iter_fields(buf, start, stop):
        if field == 1:
            if wire == _WIRE_VARINT:
                dims.append(value)
            elif wire == _WIRE_LEN:  # packed encoding
                p, q = value
                while p < q:
                    d, p = _read_varint(buf, p, q)
                    dims.append(d)
        elif field == 2 and wire == _WIRE_LEN:
            tensor_type = bytes(buf[value[0]:value[1]]).decode('utf-8')
        elif field == 3 and wire == _WIRE_LEN:
            content = value
    return dims, tensor_type, content


def _iter_records(buf, size: int, path: str):
    """Yield ``(tag, dims, tensor_type, (start, stop))`` per Value record."""
    for field, wire, value in _iter_fields(buf, 0, size):
        if field != 1 or wire != _WIRE_LEN:
            continue  # not a Checkpoint.value: skip, as protobuf does
        tag, tensor = None, None
        for vfield, vwire, vvalue in _iter_fields(buf, *value):
            if vfield == 1 and vwire == _WIRE_LEN:
                tag = bytes(buf[vvalue[0]:vvalue[1]]).decode('utf-8')
            elif vfield == 2 and vwire == _WIRE_LEN:
                tensor = _parse_tensor(buf, *vvalue)
            # field 3 (MapTensorProto, embedding tables) is not used by RingMoE
        if tag is None or tensor is None:
            if tag is not None:
                yield tag, None, None, None
            continue
        dims, tensor_type, content = tensor
        yield tag, dims, tensor_type, content


def read_mindspore_ckpt(path: Union[str, os.PathLike],
                        names: Optional[Sequence[str]] = None) -> 'OrderedDict[str, MSTensor]':
    """Read a MindSpore ``.ckpt`` into ``{name: MSTensor}`` in file order.

    Args:
        path: the checkpoint file.
        names: only keep these parameters (all when None).

    Raises:
        FileNotFoundError: no such file.
        CheckpointFormatError: not a checkpoint (e.g. an encrypted one), an
            unknown ``tensor_type``, or content whose size does not match dims.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'MindSpore checkpoint not found: {path}')
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointFormatError(f'{path}: empty file, not a MindSpore checkpoint')
    keep = set(names) if names is not None else None
    out: 'OrderedDict[str, MSTensor]' = OrderedDict()
    with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[0] != 0x0A:
            raise CheckpointFormatError(
                f'{path}: does not start like a MindSpore checkpoint (first byte '
                f'0x{buf[0]:02x}, expected 0x0a). Encrypted checkpoints must be '
                'decrypted with mindspore.load_checkpoint(dec_key=...) and saved again.')
        pending: List[Tuple[str, List[int], str, List[Tuple[int, int]]]] = []

        def flush():
            tag, dims, ttype, spans = pending.pop()
            if keep is not None and tag not in keep:
                return
            if ttype not in MS_TO_NUMPY:
                raise CheckpointFormatError(
                    f'{path}: parameter {tag!r} has tensor_type {ttype!r}; supported: '
                    f'{list(MS_TO_NUMPY)}')
            raw = b''.join(bytes(buf[s:e]) for s, e in spans)
            data = np.frombuffer(raw, dtype=MS_TO_NUMPY[ttype]).copy()
            shape = _shape_from_dims(dims, data.size)
            if shape is None:
                raise CheckpointFormatError(
                    f'{path}: parameter {tag!r} stores {data.size} values of type {ttype} '
                    f'but its dims are {list(dims)}')
            if tag in out:
                raise CheckpointFormatError(f'{path}: parameter {tag!r} appears twice')
            out[tag] = MSTensor(data.reshape(shape), ttype, tuple(dims))

        try:
            for tag, dims, ttype, span in _iter_records(buf, size, path):
                if dims is None:
                    raise CheckpointFormatError(f'{path}: parameter {tag!r} has no tensor')
                if pending and pending[-1][0] == tag:
                    # a slice of a large tensor: same tag, contents concatenate
                    pending[-1][3].append(span)
                    continue
                if pending:
                    flush()
                pending.append((tag, dims, ttype, [span]))
            if pending:
                flush()
        except CheckpointFormatError as e:
            if str(e).startswith(path):
                raise
            raise CheckpointFormatError(f'{path}: not a valid MindSpore checkpoint ({e})') from None
    if not out and keep is None:
        raise CheckpointFormatError(f'{path}: no parameters found')
    return out


def _shape_from_dims(dims: Sequence[int], size: int) -> Optional[Tuple[int, ...]]:
    dims = tuple(dims)
    # mindspore writes scalars with dims [0] (and reads [0] and [1] as flat)
    if dims == (0,) and size == 1:
        return ()
    if int(np.prod(dims, dtype=np.int64)) == size:
        return dims
    return None


# ------------------------------------------------------------------- writing
def _as_mstensor(value) -> MSTensor:
    if isinstance(value, MSTensor):
        return value
    if hasattr(value, 'detach'):  # torch.Tensor
        import torch
        t = value.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().view(np.uint16)
            return MSTensor(data, 'BFloat16', tuple(data.shape) or (0,))
        value = t.numpy()
    data = np.asarray(value)
    name = data.dtype.name
    if name not in NUMPY_TO_MS:
        raise TypeError(f'cannot store dtype {data.dtype} in a MindSpore checkpoint')
    return MSTensor(data, NUMPY_TO_MS[name], tuple(data.shape) or (0,))


def encode_record(name: str, tensor: MSTensor, content: bytes) -> bytes:
    """One serialised ``Checkpoint`` holding one ``Value``."""
    proto = b''.join(_encode_varint(1 << 3 | _WIRE_VARINT) + _encode_varint(int(d))
                     for d in tensor.dims)
    proto += _len_field(2, tensor.tensor_type.encode('utf-8'))
    proto += _len_field(3, content)
    value = _len_field(1, name.encode('utf-8')) + _len_field(2, proto)
    return _len_field(1, value)


def write_mindspore_ckpt(path: Union[str, os.PathLike],
                         params: Dict[str, Union[MSTensor, np.ndarray, 'object']],
                         slice_bytes: int = DEFAULT_SLICE_BYTES,
                         overwrite: bool = False) -> None:
    """Write ``{name: array | torch.Tensor | MSTensor}`` as a MindSpore checkpoint.

    The layout is what ``mindspore.save_checkpoint`` produces: one record per
    parameter in dict order, contents above ``slice_bytes`` split into
    consecutive records with the same tag. Refuses to overwrite an existing
    file unless ``overwrite``.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; refusing to overwrite it')
    if slice_bytes <= 0:
        raise ValueError(f'slice_bytes must be positive, got {slice_bytes}')
    tmp = path + '.part'
    with open(tmp, 'wb') as f:
        for name, value in params.items():
            t = _as_mstensor(value)
            content = np.ascontiguousarray(t.data).tobytes()
            if not content:
                f.write(encode_record(name, t, b''))
            for i in range(0, len(content), slice_bytes):
                f.write(encode_record(name, t, content[i:i + slice_bytes]))
    os.replace(tmp, path)


def to_torch(tensor: MSTensor):
    """An ``MSTensor`` as a torch tensor of the same dtype (bit-exact, BFloat16 included)."""
    import torch
    data = np.ascontiguousarray(tensor.data)
    if not data.flags.writeable:
        data = data.copy()
    if tensor.tensor_type == 'BFloat16':
        return torch.from_numpy(data.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(data)  # shares memory with the array
