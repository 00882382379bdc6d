"""Tests of ``gluon_resnet.export``: ONNX and MXNet files that compute what MXNet computes.

Two runs per module: CIFAR ResNet-20 (option A shortcuts) on the digits at
16x16 from the CLI, and d2l's ResNet-18 (max pool, conv biases) on 256
Fashion-MNIST images from ``fit``; one epoch each.  Every check runs the
export on real test images of the run's dataset.
"""
import importlib
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import onnx
import onnxruntime
import pytest
from mxnet import gluon

from conftest import WITHOUT_ROOT_OVERRIDE, cli_error, python_m, train_digits_run
from fashion_subset import fashion_mnist_subset
from gluon_resnet._cli import run
from gluon_resnet.checkpoint import RunDir
from gluon_resnet.data import load_data
from gluon_resnet.export import export
from gluon_resnet.models import get_model
from gluon_resnet.predict import load_trained
from gluon_resnet.training import fit

# The module, not the function `export` that the package may export under its name.
export_module = importlib.import_module('gluon_resnet.export')
TOLERANCE = 1e-4  # of the largest logit, as the tool's; measured: below 1e-6


@pytest.fixture(scope='module')
def digits_run(tmp_path_factory):
    return train_digits_run(tmp_path_factory.mktemp('runs') / 'digits')


@pytest.fixture
def fashion_run(tmp_path):
    """d2l's ResNet-18 after one epoch on 256 images of the shipped Fashion-MNIST
    subset, with the settings predict and export read (the CLI records them all);
    the subset stays readable while the test runs."""
    out = str(tmp_path / 'runs' / 'fashion')
    with fashion_mnist_subset() as data_dir:
        train_iter, test_iter, info = load_data('fashion-mnist', 64, data_dir=data_dir,
                                                train_subset=256, test_subset=64)
        args = {'model': 'resnet18', 'data': 'fashion-mnist', 'image_size': None,
                'data_dir': str(data_dir)}
        fit(get_model('resnet18', num_classes=10), train_iter, test_iter, 1, 0.05, 'cpu',
            out=RunDir(out, args=args, data=info))
        yield out


def real_test_batch(run_dir, count=64):
    """The run's net and its first ``count`` test images, as the run's loader gives them."""
    net, args, data = load_trained(run_dir)
    _, test_iter, _ = load_data(data['name'], count, args['image_size'], args['data_dir'])
    return net, next(iter(test_iter))[0]


def onnx_difference(path, run_dir):
    """Largest |logit difference| of onnxruntime on ``path`` against MXNet, over
    the largest |logit|, on the first 64 test images."""
    net, X = real_test_batch(run_dir)
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    expected = net(X).asnumpy()
    got = session.run(None, {'data': X.asnumpy()})[0]
    assert got.shape == expected.shape
    return np.abs(got - expected).max() / np.abs(expected).max()


def check_error(argv, message, capsys, code=2):
    """``argv`` fails with exit ``code`` and one line on stderr: ``message``, or
    matching it if it is a compiled regular expression."""
    error = cli_error(export_module.main, export_module.PROG, argv, capsys, code)
    assert message.search(error) if isinstance(message, re.Pattern) else error == message, error


def test_onnx_computes_what_mxnet_computes(digits_run, tmp_path):
    out = tmp_path / 'digits.onnx'
    result = python_m('gluon_resnet.export', '--run', digits_run, '--format', 'onnx',
                      '--out', out)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert printed[0].startswith('onnxruntime vs MXNet on 64 test images: max abs difference ')
    assert printed[1] == f'wrote {out}'
    assert sorted(os.listdir(tmp_path)) == ['digits.onnx']
    assert onnx_difference(str(out), digits_run) < TOLERANCE
    model = onnx.load(str(out))
    assert [value.name for value in model.graph.input] == ['data']  # no initializers
    assert [value.name for value in model.graph.output] == ['logits']
    meta = {prop.key: prop.value for prop in model.metadata_props}
    config = json.loads(open(os.path.join(digits_run, 'config.json')).read())
    assert json.loads(meta['classes']) == list('0123456789')
    assert json.loads(meta['image_shape']) == [1, 16, 16]
    assert json.loads(meta['mean']) == config['data']['mean']
    assert json.loads(meta['std']) == config['data']['std']
    assert (meta['pixel_max'], meta['data'], meta['model']) == ('16', 'digits',
                                                                'cifar_resnet20_v1')
    assert json.loads(meta['dataset_size']) == [8, 8]
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    for batch in (1, 7):  # the batch axis is dynamic
        X = np.zeros((batch, 1, 16, 16), np.float32)
        assert session.run(None, {'data': X})[0].shape == (batch, 10)


def test_onnx_of_resnet18_on_fashion_mnist(fashion_run, tmp_path):
    result = export(fashion_run, tmp_path / 'fashion.onnx')
    assert result.difference <= TOLERANCE * result.largest_logit
    assert result.num_images == 64
    assert onnx_difference(result.paths[0], fashion_run) < TOLERANCE
    meta = {p.key: p.value for p in onnx.load(result.paths[0]).metadata_props}
    assert (meta['pixel_max'], json.loads(meta['image_shape'])) == ('255', [1, 28, 28])
    assert json.loads(meta['dataset_size']) == [28, 28]
    assert json.loads(meta['classes'])[-1] == 'ankle boot'


@pytest.mark.filterwarnings('ignore:Cannot decide type')  # of the input: it is float32
def test_mxnet_format_round_trips(digits_run, tmp_path, capsys):
    prefix = str(tmp_path / 'digits')
    run(lambda: export_module.main(['--run', digits_run, '--format', 'mxnet', '--out', prefix]),
        export_module.PROG)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith('SymbolBlock.imports vs MXNet on 64 test images: ')
    assert printed[1] == f'wrote {prefix}-symbol.json, {prefix}-0000.params'
    assert sorted(os.listdir(tmp_path)) == ['digits-0000.params', 'digits-symbol.json']
    block = gluon.SymbolBlock.imports(f'{prefix}-symbol.json', ['data'], f'{prefix}-0000.params')
    net, X = real_test_batch(digits_run)
    np.testing.assert_allclose(block(X).asnumpy(), net(X).asnumpy(), rtol=0, atol=1e-5)


def test_an_existing_file_is_kept_unless_force(digits_run, tmp_path, capsys):
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'mine')
    argv = ['--run', digits_run, '--format', 'onnx', '--out', out]
    check_error(argv, f'{out} exists: choose another path, or --force to replace it', capsys)
    assert out.read_bytes() == b'mine'
    export(digits_run, out, force=True)
    assert onnx_difference(str(out), digits_run) < TOLERANCE
    assert sorted(os.listdir(tmp_path)) == ['model.onnx']


def test_bad_input(digits_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / 'm.onnx'
    run = ['--run', digits_run, '--format', 'onnx']
    check_error([*run, '--out', tmp_path / 'no' / 'm.onnx'],
                f'{tmp_path}/no/m.onnx: no folder {tmp_path}/no: create it first', capsys)
    check_error([*run, '--out', tmp_path], f'{tmp_path} is a folder: expected a file path', capsys)
    check_error(['--run', tmp_path, '--format', 'mxnet', '--out', out],
                f'{tmp_path} is not a run directory: it has no config.json', capsys)
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'config.json').write_bytes(open(os.path.join(digits_run, 'config.json'),
                                              'rb').read())
    check_error(['--run', broken, '--format', 'onnx', '--out', out],
                f'{broken} has no best.ckpt: expected a run that finished at least one epoch',
                capsys)
    (broken / 'best.ckpt').write_bytes(open(os.path.join(digits_run, 'best.ckpt'),
                                            'rb').read()[:-100])
    check_error(['--run', broken, '--format', 'onnx', '--out', out],
                re.compile(f'^checkpoint {broken}/best.ckpt is truncated or corrupted'), capsys)

    # A model the converter cannot handle: named, and nothing written.
    def fail(*args, **kwargs):
        raise AttributeError('No conversion function registered for op type Foo yet.')
    monkeypatch.setattr(mx.onnx, 'export_model', fail)
    check_error([*run, '--out', out], f'cifar_resnet20_v1 of {digits_run} failed to export to '
                'onnx: No conversion function registered for op type Foo yet.', capsys)
    monkeypatch.undo()
    # An export that computes something else: exit 1, nothing written.
    monkeypatch.setattr(export_module, 'max_difference', lambda *args: (0.5, 10.0))
    check_error([*run, '--out', out], 'the onnx export differs from MXNet by 0.5 on 64 test '
                'images, more than 0.0001 of the largest logit 10: nothing written', capsys,
                code=1)
    # Without the onnx extra.
    monkeypatch.setitem(sys.modules, 'onnx', None)
    check_error([*run, '--out', out], 'ONNX export needs the onnx extra (onnx and onnxruntime), '
                "which is not installed (import of onnx halted; None in sys.modules): "
                "pip install -e '.[onnx]'", capsys)
    assert sorted(os.listdir(tmp_path)) == ['broken']


def test_read_only_folder(digits_run, tmp_path):
    folder = tmp_path / 'read-only'
    folder.mkdir()
    folder.chmod(0o555)
    result = python_m('gluon_resnet.export', '--run', digits_run, '--format', 'mxnet',
                      '--out', folder / 'net', prefix=WITHOUT_ROOT_OVERRIDE)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f'{export_module.PROG}: error: {folder}/net-symbol.json: the folder {folder} is '
        'read-only: expected a writable folder']
    assert os.listdir(folder) == []


# The export CLI on the command line argv[2:], which sends itself SIGINT whenever it calls
# its module's function argv[1].
INTERRUPTED_EXPORT = """
import importlib, os, signal, sys
from gluon_resnet._cli import run
export = importlib.import_module('gluon_resnet.export')
name, argv = sys.argv[1], sys.argv[2:]
function = getattr(export, name)
def interrupted(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    return function(*args, **kwargs)
setattr(export, name, interrupted)
run(lambda: export.main(argv), export.PROG)
"""


@pytest.mark.filterwarnings('ignore:Cannot decide type')  # of the input: it is float32
@pytest.mark.parametrize('when', ['max_difference', 'commit'])
def test_an_interrupt_writes_all_or_nothing(digits_run, tmp_path, when):
    """SIGINT while the export is checked: nothing is written, its temporary files are
    removed, exit 130; while its first file is committed: both are written, exit 0."""
    out, temp = tmp_path / 'out', tmp_path / 'temp'
    out.mkdir()
    temp.mkdir()
    prefix = out / 'digits'
    result = subprocess.run(
        [sys.executable, '-c', INTERRUPTED_EXPORT, when, '--run', digits_run, '--format',
         'mxnet', '--out', str(prefix)], capture_output=True, text=True, timeout=120,
        env={**os.environ, 'OMP_NUM_THREADS': '1', 'TMPDIR': str(temp)})
    if when == 'commit':
        assert result.returncode == 0, result.stderr
        assert result.stderr == 'using 1 CPU thread (from OMP_NUM_THREADS)\n'  # it worked
        assert result.stdout.splitlines()[-1] == (f'wrote {prefix}-symbol.json, '
                                                  f'{prefix}-0000.params')
        assert sorted(os.listdir(out)) == ['digits-0000.params', 'digits-symbol.json']
        gluon.SymbolBlock.imports(f'{prefix}-symbol.json', ['data'],
                                  f'{prefix}-0000.params')  # loads: both files are whole
    else:
        assert (result.returncode, result.stderr) == (
            130, f'{export_module.PROG}: interrupted\n'), result.stderr
        assert result.stdout == '' and os.listdir(out) == []
    assert os.listdir(temp) == []  # the conversion's temporary folder is removed
