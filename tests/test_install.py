"""A normal (not editable) ``pip install .``: the wheel holds every module,
and each imports from a fresh virtual environment."""
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import gluon_resnet

SOURCE = Path(gluon_resnet.__file__).parent
ROOT = SOURCE.parent
MODULES = sorted('.'.join(path.relative_to(ROOT).with_suffix('').parts)
                 for path in SOURCE.rglob('*.py'))


def modules_in(wheel):
    """The module names of the ``.py`` files a wheel holds."""
    with zipfile.ZipFile(wheel) as archive:
        return sorted(name[:-len('.py')].replace('/', '.') for name in archive.namelist()
                      if name.endswith('.py'))


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel pip builds from a copy of the source tree (the tree itself stays clean)."""
    work = tmp_path_factory.mktemp('wheel')
    source = work / 'source'
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', 'runs', 'build', '*.egg-info', '__pycache__', '.pytest_cache'))
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--quiet', '-w', str(work / 'dist'),
         str(source)])
    wheels = list((work / 'dist').glob('gluon_resnet-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_every_module(wheel):
    assert 'gluon_resnet.data.loader' in MODULES  # the subpackage is there to be missed
    assert modules_in(wheel) == MODULES


def test_every_module_imports_from_a_fresh_venv(wheel, tmp_path):
    """The wheel installed alone in a new venv (its dependencies, already
    installed here, on ``PYTHONPATH``), imported from outside the source tree."""
    scratch = tmp_path / 'venv'
    venv.create(scratch, with_pip=True)
    python = scratch / 'bin' / 'python'
    run([str(python), '-m', 'pip', 'install', '--no-deps', '--quiet', str(wheel)])
    script = ('import importlib, sys\n'
              f'for name in {MODULES!r}:\n'
              '    importlib.import_module(name)\n'
              'import gluon_resnet\n'
              'print(gluon_resnet.__file__)\n')
    dependencies = sysconfig.get_paths()['purelib']  # this venv's: mxnet, numpy, ...
    result = run([str(python), '-c', script], cwd=tmp_path,
                 env={'PYTHONPATH': dependencies, 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'})
    assert Path(result.stdout.strip()).is_relative_to(scratch)
