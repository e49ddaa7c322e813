import os
import os.path as osp
import sys

# Tests run on the CPU unless MMRINGMOE_TEST_GPU=1; set before torch is imported.
if os.environ.get('MMRINGMOE_TEST_GPU', '0') != '1':
    os.environ['CUDA_VISIBLE_DEVICES'] = ''

# One intra-op thread: on a busy 2-core machine torch's thread pool makes a tiny
# RingMoE step 30x slower than a single thread. MMRINGMOE_TEST_THREADS overrides.
_THREADS = os.environ.get('MMRINGMOE_TEST_THREADS', '1')
os.environ.setdefault('OMP_NUM_THREADS', _THREADS)
import torch  # noqa: E402

torch.set_num_threads(int(_THREADS))

_TESTS = osp.dirname(osp.abspath(__file__))
for _path in (osp.dirname(_TESTS), _TESTS):  # `tests.helpers` and `helpers`
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than ~60 s on 2 CPU cores')


import random  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Every test starts from the same global generator states, whatever ran before
# it, so an outcome never depends on test order. MMRINGMOE_TEST_SEED picks
# another seed, to look for assertions that hold for one draw only.
_SEED = int(os.environ.get('MMRINGMOE_TEST_SEED', '0'))


@pytest.fixture(autouse=True)
def _seed_global_generators():
    random.seed(_SEED)
    np.random.seed(_SEED)
    torch.manual_seed(_SEED)
    yield
