"""The scene classification split tool (Appendix B.5.1: NWPU-RESISC45 10%,
AID 20% of every class for training)."""
import os

import pytest

from mmringmoe.datasets import cls_split


@pytest.fixture
def scene_root(tmp_path):
    # NWPU-like 700 per class and AID-like uneven counts (220..400)
    counts = dict(airplane=700, beach=700, Airport=360, BareLand=310,
                  Bridge=220, Viaduct=420)
    for c, n in counts.items():
        os.makedirs(tmp_path / 'scenes' / c)
        for i in range(n):
            (tmp_path / 'scenes' / c / f'{c.lower()}_{i + 1:03d}.jpg').touch()
    (tmp_path / 'scenes' / 'notes.txt').touch()  # a stray file, no class
    return str(tmp_path / 'scenes'), counts


@pytest.mark.parametrize('ratio', [0.1, 0.2])
def test_split_per_class_percentage_and_no_overlap(scene_root, ratio):
    root, counts = scene_root
    files = cls_split.scan_class_folders(root)
    assert sorted(files) == sorted(counts)
    train, test = cls_split.split_per_class(files, ratio, seed=0)
    classes = sorted(counts)
    for label, c in enumerate(classes):
        n_tr = sum(1 for _, lab in train if lab == label)
        n_te = sum(1 for _, lab in test if lab == label)
        assert n_tr == round(ratio * counts[c])
        assert n_tr + n_te == counts[c]
    assert sum(1 for _, lab in train if lab == 0) == round(
        ratio * counts[classes[0]])
    tr, te = {p for p, _ in train}, {p for p, _ in test}
    assert not tr & te
    assert tr | te == {p for c in files for p in files[c]}
    # labels follow the sorted class folder names
    for p, label in train + test:
        assert p.split('/')[0] == classes[label]


def test_split_is_deterministic_per_seed(scene_root, tmp_path):
    root, _ = scene_root
    a = cls_split.write_split(root, str(tmp_path / 'a'), 0.1, seed=3)
    b = cls_split.write_split(root, str(tmp_path / 'b'), 0.1, seed=3)
    assert a == b
    for name in ('classes.txt', 'train.txt', 'test.txt'):
        assert (tmp_path / 'a' / name).read_text() == (
            tmp_path / 'b' / name).read_text()
    cls_split.write_split(root, str(tmp_path / 'c'), 0.1, seed=4)
    assert (tmp_path / 'c' / 'train.txt').read_text() != (
        tmp_path / 'a' / 'train.txt').read_text()
    with pytest.raises(FileExistsError):
        cls_split.write_split(root, str(tmp_path / 'a'), 0.1, seed=3)


def test_cli_writes_the_paths_the_configs_read(scene_root, tmp_path):
    root, counts = scene_root
    got = cls_split.main([root, '--train-ratio', '0.2'])
    out = tmp_path / 'splits' / 'scenes_tr20'
    assert got['train'] == sum(round(0.2 * n) for n in counts.values())
    train = cls_split.read_split(str(out / 'train.txt'))
    assert len(train) == got['train']
    assert (out / 'classes.txt').read_text().split() == sorted(counts)


def test_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing'):
        cls_split.scan_class_folders(str(tmp_path / 'missing'))
    os.makedirs(tmp_path / 'empty' / 'cls')
    with pytest.raises(ValueError, match='holds no images'):
        cls_split.scan_class_folders(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='train_ratio'):
        cls_split.split_per_class({'a': ['a/1.jpg', 'a/2.jpg']}, 1.5)
    with pytest.raises(ValueError, match='too few'):
        cls_split.split_per_class({'a': ['a/1.jpg']}, 0.1)
