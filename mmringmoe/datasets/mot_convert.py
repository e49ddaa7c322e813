"""AIR-MOT / AIR-HSAO satellite-video annotations -> mmdet CocoVideo json.

Input layout (MOTChallenge style, one folder per video; this is the layout
the converter expects, check your copy against it)::

    <src>/<split>/<video>/img/000001.jpg      frames, numbered from 1 without
                                              gaps (.jpg, .jpeg, .png, .tif,
                                              .tiff or .bmp; any zero padding)
    <src>/<split>/<video>/gt/gt.txt           one line per object per frame:

        frame, id, x, y, w, h, conf, class, visibility

    frame       1-based frame number; the file img/<frame>.<ext> must exist
    id          track id, unique inside the video
    x, y, w, h  top-left corner, width and height in pixels (floats allowed)
    conf        1 = evaluated object, 0 = ignore region (MOTChallenge meaning)
    class       1-based index into the class list: AIR-MOT 1 = aircraft,
                2 = ship; AIR-HSAO 1 = aircraft
    visibility  in [0, 1]; optional (defaults to 1); extra columns ignored

Output: ``<out>/<split>_cocoformat.json`` in the CocoVideo format that mmdet's
``MOTChallengeDataset`` / ``BaseVideoDataset`` (tracking) and ``CocoDataset``
(detector training on single frames) read: ``videos``, ``images`` (with
``video_id``, 0-based ``frame_id``, ``file_name`` = ``<split>/<video>/img/<f>``
relative to ``<src>``), ``annotations`` (``bbox`` xywh, ``instance_id``
unique over the split, ``mot_conf``, ``visibility``) and ``categories``.
The ``<video>/img/<frame>`` path shape is what ``MOTChallengeMetric`` uses to
recover the video name (third path component from the end).

Errors name the file and the object: a box outside its frame, a degenerate
box (w or h <= 0), an unknown class index, a frame missing from a video
(referenced by gt.txt or a gap in the numbering of img/).
"""
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

AIR_MOT_CLASSES = ('aircraft', 'ship')
AIR_HSAO_CLASSES = ('aircraft', )
DATASET_CLASSES = {'air-mot': AIR_MOT_CLASSES, 'air-hsao': AIR_HSAO_CLASSES}
IMG_EXTS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')


def _image_size(path: str):
    from PIL import Image
    with Image.open(path) as img:  # reads the header only
        return img.size  # (width, height)


def _list_frames(img_dir: str) -> Dict[int, str]:
    """Map 1-based frame number -> file name; raise on a gap."""
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'{img_dir}: frame folder not found')
    frames = {}
    for name in os.listdir(img_dir):
        stem, ext = osp.splitext(name)
        if ext.lower() not in IMG_EXTS:
            continue
        if not re.fullmatch(r'\d+', stem):
            raise ValueError(f'{osp.join(img_dir, name)}: frame file names '
                             'must be frame numbers (e.g. 000001.jpg)')
        num = int(stem)
        if num in frames:
            raise ValueError(f'{img_dir}: frame {num} is stored twice '
                             f'({frames[num]}, {name})')
        frames[num] = name
    if not frames:
        raise FileNotFoundError(f'{img_dir}: no frames found')
    first, last = min(frames), max(frames)
    if first != 1:
        raise ValueError(f'{img_dir}: frame 1 is missing from the video '
                         f'(frames start at {first})')
    missing = sorted(set(range(first, last + 1)) - set(frames))
    if missing:
        raise ValueError(f'{img_dir}: frame {missing[0]} is missing from the '
                         f'video ({len(missing)} missing in 1..{last})')
    return frames


def _read_gt(gt_file: str, classes: Sequence[str], frames: Dict[int, str],
             size) -> List[dict]:
    width, height = size
    rows = []
    with open(gt_file) as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            vals = [v.strip() for v in line.replace(' ', ',').split(',')
                    if v.strip()]
            where = f'{gt_file}: line {line_no}'
            if len(vals) < 8:
                raise ValueError(
                    f'{where}: expected at least 8 comma separated values '
                    f'(frame,id,x,y,w,h,conf,class[,visibility]), got '
                    f'{len(vals)}')
            frame, tid = int(float(vals[0])), int(float(vals[1]))
            x, y, w, h, conf = (float(v) for v in vals[2:7])
            cls = int(float(vals[7]))
            vis = float(vals[8]) if len(vals) > 8 else 1.0
            where = f'{where} (frame {frame}, object id {tid})'
            if frame not in frames:
                raise ValueError(
                    f'{where}: frame {frame} is missing from the video '
                    f'(no img/{frame:06d}.* in {osp.dirname(osp.dirname(gt_file))})')
            if not 1 <= cls <= len(classes):
                raise ValueError(
                    f'{where}: unknown class {cls}; expected 1..{len(classes)} '
                    f'for {tuple(classes)}')
            if not (w > 0 and h > 0):
                raise ValueError(f'{where}: degenerate box w={w}, h={h}')
            if x < 0 or y < 0 or x + w > width or y + h > height:
                raise ValueError(
                    f'{where}: box (x, y, w, h)=({x}, {y}, {w}, {h}) lies '
                    f'outside the frame of width {width} and height {height}')
            rows.append(dict(frame=frame, id=tid, bbox=[x, y, w, h],
                             conf=conf, cls=cls, vis=vis))
    return rows


def convert_split(src: str, split: str, classes: Sequence[str],
                  out_file: Optional[str] = None,
                  videos: Optional[Sequence[str]] = None,
                  quiet: Optional[bool] = None) -> dict:
    """Convert ``<src>/<split>/<video>/`` folders to one CocoVideo dict.

    ``videos``: names to convert (default: every sub folder, sorted).
    ``quiet``: no progress bar over the videos (shown only on a terminal).
    ``out_file``: where to write the json; never one of the input files.
    Returns the CocoVideo dict.
    """
    split_dir = osp.join(src, split)
    if not osp.isdir(split_dir):
        raise FileNotFoundError(f'{split_dir}: split folder not found')
    if videos is None:
        videos = sorted(d for d in os.listdir(split_dir)
                        if osp.isdir(osp.join(split_dir, d)))
    out = dict(
        categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)],
        videos=[], images=[], annotations=[])
    img_id = ann_id = 0
    ins_offset = 0
    from mmringmoe.visualization.progress import progress
    for vid, video in enumerate(progress(videos, desc=split, quiet=quiet,
                                         unit='video'), 1):
        vdir = osp.join(split_dir, video)
        frames = _list_frames(osp.join(vdir, 'img'))
        width, height = _image_size(osp.join(vdir, 'img', frames[1]))
        gt_file = osp.join(vdir, 'gt', 'gt.txt')
        if not osp.isfile(gt_file):
            raise FileNotFoundError(f'{gt_file}: annotation file not found '
                                    f'for video {video!r}')
        rows = _read_gt(gt_file, classes, frames, (width, height))
        track_ids = sorted({r['id'] for r in rows})
        ins_map = {t: ins_offset + i + 1 for i, t in enumerate(track_ids)}
        ins_offset += len(track_ids)
        out['videos'].append(dict(id=vid, name=video, width=width,
                                  height=height))
        frame_img = {}
        for num in sorted(frames):
            img_id += 1
            frame_img[num] = img_id
            out['images'].append(
                dict(id=img_id, video_id=vid, frame_id=num - 1,
                     mot_frame_id=num, width=width, height=height,
                     file_name=f'{split}/{video}/img/{frames[num]}'))
        for r in sorted(rows, key=lambda r: (r['frame'], r['id'])):
            ann_id += 1
            x, y, w, h = r['bbox']
            out['annotations'].append(
                dict(id=ann_id, image_id=frame_img[r['frame']],
                     category_id=r['cls'], instance_id=ins_map[r['id']],
                     mot_instance_id=r['id'], bbox=[x, y, w, h], area=w * h,
                     iscrowd=False, mot_conf=r['conf'], mot_class_id=r['cls'],
                     visibility=r['vis']))
    out['num_instances'] = ins_offset
    if out_file is not None:
        src_files = {osp.abspath(osp.join(split_dir, v, 'gt', 'gt.txt'))
                     for v in videos}
        if osp.abspath(out_file) in src_files:
            raise ValueError(f'{out_file}: refusing to overwrite an input file')
        os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
        with open(out_file, 'w') as f:
            json.dump(out, f)
    return out
