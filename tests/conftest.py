import os
import os.path as osp
import sys

# Tests run on the CPU unless MMRINGMOE_TEST_GPU=1; set before torch is imported.
if os.environ.get('MMRINGMOE_TEST_GPU', '0') != '1':
    os.environ['CUDA_VISIBLE_DEVICES'] = ''

_TESTS = osp.dirname(osp.abspath(__file__))
for _path in (osp.dirname(_TESTS), _TESTS):  # `tests.helpers` and `helpers`
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than ~60 s on 2 CPU cores')
