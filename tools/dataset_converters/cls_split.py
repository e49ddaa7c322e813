"""Seeded per-class train/test split for NWPU-RESISC45 and AID (B.5.1).

    python tools/dataset_converters/cls_split.py data/NWPU-RESISC45 --train-ratio 0.1
    python tools/dataset_converters/cls_split.py data/AID --train-ratio 0.2

writes ``data/splits/{nwpu-resisc45_tr10,aid_tr20}/{classes,train,test}.txt``
(see ``mmringmoe.datasets.cls_split``).
"""
from mmringmoe.datasets.cls_split import main

if __name__ == '__main__':
    main()
