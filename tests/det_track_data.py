"""Tiny detection / tracking data sets in the real on-disk layouts.

DIOR (VOC XML, split image folders), DIOR-R (robndbox XML), HRSC2016 (HRSC
XML, .bmp), SAR-AIRcraft-1.0 (VOC XML, gray JPEG), HRSID / SARDet-100k (COCO
json, gray images) and AIR-MOT / AIR-HSAO videos (MOTChallenge-style img/ and
gt/gt.txt). Images are noise with bright boxes so a detector has something to
see; every writer returns the boxes it wrote.
"""
import json
import math
import os
import os.path as osp
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image


def _image(size, boxes, channels, seed):
    w, h = size
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (h, w, channels), dtype=np.uint8)
    for x1, y1, x2, y2 in boxes:
        img[int(y1):int(y2), int(x1):int(x2)] = 220
    return img[..., 0] if channels == 1 else img


def _save(img, path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path)


def _sub(parent, tag, text=None):
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def default_boxes(i, size):
    """Two well separated boxes that fit in the image, shifted with ``i``."""
    w, h = size
    s = 4 * (i % 3)
    return [[8 + s, 8, 40 + s, 36], [w - 44, h - 40 - s, w - 10, h - 8 - s]]


def write_voc(root, ids, classes, size=(96, 96), img_subdir='JPEGImages',
              ann_subdir='Annotations', channels=3, objects=None):
    """VOC XML + JPEG per id. ``objects``: {id: [(name, box), ...]} to
    override the default two objects (used for bad-input tests)."""
    written = {}
    for i, img_id in enumerate(ids):
        objs = (objects or {}).get(img_id) or [
            (classes[(i + k) % len(classes)], b)
            for k, b in enumerate(default_boxes(i, size))]
        root_el = ET.Element('annotation')
        _sub(root_el, 'filename', f'{img_id}.jpg')
        sz = _sub(root_el, 'size')
        _sub(sz, 'width', size[0])
        _sub(sz, 'height', size[1])
        _sub(sz, 'depth', channels)
        for name, (x1, y1, x2, y2) in objs:
            o = _sub(root_el, 'object')
            _sub(o, 'name', name)
            _sub(o, 'pose', 'Unspecified')
            _sub(o, 'truncated', 0)
            _sub(o, 'difficult', 0)
            b = _sub(o, 'bndbox')
            for k, v in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                            (x1, y1, x2, y2)):
                _sub(b, k, v)
        xml_path = osp.join(root, ann_subdir, f'{img_id}.xml')
        os.makedirs(osp.dirname(xml_path), exist_ok=True)
        ET.ElementTree(root_el).write(xml_path)
        good = [b for _, b in objs if b[2] <= size[0] and b[3] <= size[1]
                and b[0] >= 0 and b[1] >= 0]
        _save(_image(size, good, channels, i),
              osp.join(root, img_subdir, f'{img_id}.jpg'))
        written[img_id] = objs
    return written


def write_list(path, ids):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(ids) + '\n')


def make_dior(root, size=(96, 96)):
    """DIOR-R release layout with horizontal AND oriented XML per image."""
    from mmringmoe.datasets.det_datasets import DIOR_CLASSES
    # DIOR's own files mix cases
    classes = ['airplane', 'Expressway-Service-area', 'ship', 'vehicle']
    assert all(c.lower() in DIOR_CLASSES for c in classes)
    # one image each in train and val: the concatenated trainval set is one
    # batch of two
    splits = dict(train=['00001'], val=['00002'], test=['11726', '11727'])
    boxes = {}
    for split, ids in splits.items():
        sub = 'JPEGImages-test' if split == 'test' else 'JPEGImages-trainval'
        boxes.update(write_voc(root, ids, classes, size, img_subdir=sub,
                               ann_subdir='Annotations/Horizontal Bounding '
                               'Boxes'))
        write_list(osp.join(root, 'ImageSets', 'Main', f'{split}.txt'), ids)
    # oriented boxes: the same objects as axis-aligned quadrilaterals, the
    # second one turned by 20 degrees about its centre
    for img_id, objs in boxes.items():
        root_el = ET.Element('annotation')
        sz = _sub(root_el, 'size')
        _sub(sz, 'width', size[0])
        _sub(sz, 'height', size[1])
        for k, (name, box) in enumerate(objs):
            o = _sub(root_el, 'object')
            _sub(o, 'name', name)
            _sub(o, 'difficult', 0)
            r = _sub(o, 'robndbox')
            pts = quad(box, 20 if k else 0)
            for tag, v in zip(('x_left_top', 'y_left_top', 'x_right_top',
                               'y_right_top', 'x_right_bottom',
                               'y_right_bottom', 'x_left_bottom',
                               'y_left_bottom'), pts):
                _sub(r, tag, f'{v:.1f}')
            _sub(r, 'angle', 20 if k else 0)
        path = osp.join(root, 'Annotations', 'Oriented Bounding Boxes',
                        f'{img_id}.xml')
        os.makedirs(osp.dirname(path), exist_ok=True)
        ET.ElementTree(root_el).write(path)
    return splits, boxes


def quad(box, angle_deg):
    """Corners (lt, rt, rb, lb) of ``box`` turned by ``angle_deg``."""
    x1, y1, x2, y2 = box
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    out = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2),
                   (-w / 2, h / 2)):
        out += [cx + c * dx - s * dy, cy + s * dx + c * dy]
    return out


def make_hrsc(root, size=(96, 96)):
    """HRSC2016: FullDataSet/AllImages/*.bmp, FullDataSet/Annotations/*.xml,
    ImageSets/{trainval,test}.txt; rotated boxes (cx, cy, w, h, angle)."""
    splits = dict(trainval=['100000001', '100000002'],
                  test=['100000003', '100000004'])
    counts = {}
    for split, ids in splits.items():
        write_list(osp.join(root, 'ImageSets', f'{split}.txt'), ids)
        for i, img_id in enumerate(ids):
            boxes = default_boxes(i, size)
            el = ET.Element('HRSC_Image')
            _sub(el, 'Img_ID', img_id)
            _sub(el, 'Img_FileName', img_id)
            _sub(el, 'Img_FileFmt', 'bmp')
            _sub(el, 'Img_SizeWidth', size[0])
            _sub(el, 'Img_SizeHeight', size[1])
            _sub(el, 'Img_SizeDepth', 3)
            objs = _sub(el, 'HRSC_Objects')
            for k, (x1, y1, x2, y2) in enumerate(boxes):
                o = _sub(objs, 'HRSC_Object')
                _sub(o, 'Object_ID', k + 1)
                _sub(o, 'Class_ID', '100000001')
                _sub(o, 'difficult', 0)
                for t, v in zip(('box_xmin', 'box_ymin', 'box_xmax',
                                 'box_ymax'), (x1, y1, x2, y2)):
                    _sub(o, t, v)
                _sub(o, 'mbox_cx', (x1 + x2) / 2)
                _sub(o, 'mbox_cy', (y1 + y2) / 2)
                _sub(o, 'mbox_w', x2 - x1)
                _sub(o, 'mbox_h', y2 - y1)
                _sub(o, 'mbox_ang', 0.3 * k)
                _sub(o, 'header_x', int(x2))
                _sub(o, 'header_y', int((y1 + y2) / 2))
            path = osp.join(root, 'FullDataSet', 'Annotations',
                            f'{img_id}.xml')
            os.makedirs(osp.dirname(path), exist_ok=True)
            ET.ElementTree(el).write(path)
            _save(_image(size, boxes, 3, i),
                  osp.join(root, 'FullDataSet', 'AllImages',
                           f'{img_id}.bmp'))
            counts[img_id] = len(boxes)
    return splits, counts


def write_coco(ann_file, img_dir, names, classes, size=(96, 96),
               channels=1, anns=None, ext='.jpg', bits=8):
    """COCO json + gray images; ``anns``: {name: [(cat_id, xywh), ...]}.
    ``bits=16``: 16-bit amplitude (values up to ~12000, as SAR products
    store it) in a 16-bit PNG."""
    images, annotations = [], []
    for i, name in enumerate(names):
        boxes = default_boxes(i, size)
        objs = (anns or {}).get(name) or [
            ((i + k) % len(classes) + 1,
             [b[0], b[1], b[2] - b[0], b[3] - b[1]])
            for k, b in enumerate(boxes)]
        images.append(dict(id=i + 1, file_name=name + ext, width=size[0],
                           height=size[1]))
        for cat, (x, y, w, h) in objs:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1, category_id=cat,
                bbox=[x, y, w, h], area=w * h, iscrowd=0,
                segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        img = _image(size, boxes, channels, i)
        if bits == 16:
            img = img.astype(np.uint16) * 50 + 1000
        _save(img, osp.join(img_dir, name + ext))
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    with open(ann_file, 'w') as f:
        json.dump(dict(
            images=images, annotations=annotations,
            categories=[dict(id=k + 1, name=c)
                        for k, c in enumerate(classes)]), f)
    return len(annotations)


def write_stats(folder, out):
    """``compute_rs_stats.py FOLDER --modality sar_l2 --out OUT``, the step
    the SAR-L2 detection configs document."""
    from helpers import run_tool_main
    stats = run_tool_main('dataset_converters/compute_rs_stats',
                          [folder, '--modality', 'sar_l2', '--out', out])
    assert stats['sar_l2']['num_bands'] == 1
    return stats


def make_hrsid(root, size=(96, 96)):
    n = 0
    for split, names in (('train2017', ['P0001_0_800_7200_8000',
                                        'P0001_600_1400_7200_8000']),
                         ('test2017', ['P0002_0_800_0_800',
                                       'P0003_0_800_0_800'])):
        n += write_coco(osp.join(root, 'annotations', f'{split}.json'),
                        osp.join(root, 'JPEGImages'), names, ('ship', ),
                        size, ext='.png', bits=16)
    write_stats(osp.join(root, 'JPEGImages'), osp.join(root, 'rs_stats.json'))
    return n


def make_sardet(root, size=(96, 96)):
    from mmringmoe.datasets.det_datasets import SARDET100K_CLASSES
    for split in ('train', 'val', 'test'):
        write_coco(osp.join(root, 'Annotations', f'{split}.json'),
                   osp.join(root, 'JPEGImages', split),
                   [f'{split}_{k:05d}' for k in range(2)],
                   SARDET100K_CLASSES, size, ext='.png', bits=16)
    write_stats(osp.join(root, 'JPEGImages', 'train'),
                osp.join(root, 'rs_stats.json'))


def make_sar_aircraft(root, size=(96, 96)):
    from mmringmoe.datasets.det_datasets import SAR_AIRCRAFT_CLASSES
    ids = [f'{k:07d}' for k in range(1, 7)]
    write_voc(root, ids, SAR_AIRCRAFT_CLASSES, size, channels=1)
    for split, part in (('train', ids[:2]), ('val', ids[2:4]),
                        ('test', ids[4:])):
        write_list(osp.join(root, 'ImageSets', 'Main', f'{split}.txt'), part)
    write_stats(osp.join(root, 'JPEGImages'), osp.join(root, 'rs_stats.json'))
    return ids


def write_video(vdir, num_frames, tracks, size=(128, 96), gt_lines=None,
                skip_frames=()):
    """AIR-MOT style video. ``tracks``: list of (track_id, class, box_fn)
    with box_fn(frame) -> (x, y, w, h). Returns the number of gt lines."""
    lines = []
    for f in range(1, num_frames + 1):
        boxes = []
        for tid, cls, fn in tracks:
            x, y, w, h = fn(f)
            boxes.append([x, y, x + w, y + h])
            lines.append(f'{f},{tid},{x},{y},{w},{h},1,{cls},1.0')
        if f not in skip_frames:
            _save(_image(size, boxes, 3, f),
                  osp.join(vdir, 'img', f'{f:06d}.jpg'))
    if gt_lines is not None:
        lines = gt_lines
    os.makedirs(osp.join(vdir, 'gt'), exist_ok=True)
    with open(osp.join(vdir, 'gt', 'gt.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return len(lines)


def moving(x0, y0, w, h, dx=5, dy=0):
    return lambda f: (x0 + dx * (f - 1), y0 + dy * (f - 1), w, h)


def make_airmot(root, classes=('aircraft', 'ship'), num_frames=3,
                size=(128, 96)):
    """train/ and test/ with one 3-frame video each; returns box counts."""
    counts = {}
    for split in ('train', 'test'):
        tracks = [(1, 1, moving(10, 10, 30, 24))]
        if len(classes) > 1:
            tracks.append((7, 2, moving(80, 50, 28, 30, dx=-5)))
        counts[split] = write_video(osp.join(root, split, f'{split}-01'),
                                    num_frames, tracks, size)
    return counts
