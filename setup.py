import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name):
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


def read_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmringmoe', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmringmoe',
    version=read_version(),
    description='RingMoE multi-modal remote sensing foundation model on OpenMMLab 2.0',
    packages=find_packages(exclude=('tests', 'configs', 'tools')),
    python_requires='>=3.10',
    # torch, torchvision and mmcv (built with ops) come from tools/install.sh
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'mindspore': ['mindspore']},
    license='Apache-2.0',
    zip_safe=False,
)
