"""Export a run's best checkpoint as ONNX, or as MXNet's symbol and parameters.

Examples::

    python -m gluon_resnet.export --run runs/resnet18-digits-20261124-101500 \\
        --format onnx --out resnet18-digits.onnx
    python -m gluon_resnet.export --run RUN_DIR --format mxnet --out resnet18-digits

``onnx`` writes one file: input ``data : (N, C, H, W)`` float32 with any
batch size ``N``, output ``logits : (N, classes)``; its ``metadata_props``
hold what a user of the file needs to preprocess an image as training did:
``classes`` (JSON list), ``image_shape`` ``[C, H, W]``, per-channel ``mean``
and ``std`` in raw pixel units, ``pixel_max`` (a raw pixel's largest value: an
8-bit image's 0..255 is mapped to 0..pixel_max), ``dataset_size`` (``[H, W]``
of the dataset's images before training resized them, or null) and
``preprocessing`` in words.
It needs the extra: ``pip install -e '.[onnx]'`` (onnx and onnxruntime).

``mxnet`` writes ``OUT-symbol.json`` and ``OUT-0000.params`` (``net.export``),
which ``gluon.SymbolBlock.imports(OUT + '-symbol.json', ['data'],
OUT + '-0000.params')`` loads.

Before anything is written, the export is loaded back (onnxruntime, or
``SymbolBlock.imports``) and run on a batch of the run's real test images;
the largest difference from MXNet's logits is printed.  Each file is written
through a temporary file and renamed into place (``write_all``).

Exit codes: 0 done; 1 the export differs from MXNet by more than 1e-4 of the
largest logit (nothing written); 2 a bad argument, run directory or output
path, or a model that fails to export (one line on stderr); 130 stopped by
SIGINT or SIGTERM (nothing written: once the files are being written, a
signal is ignored and the export finishes).
"""
import argparse
import json
import os
import signal
import sys
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import mxnet as mx
import numpy as np
from mxnet import gluon

from ._cli import (SIGNALS, ArgumentParser, announce_threads, ignore_signals,
                   interrupt_handler, run)
from .data import load_data
from .files import commit
from .predict import load_trained, native_size, pixel_max

__all__ = ['export', 'Exported', 'Mismatch', 'output_paths', 'FORMATS', 'TOLERANCE']

PROG = 'python -m gluon_resnet.export'
FORMATS = ('onnx', 'mxnet')
TOLERANCE = 1e-4  # of the largest logit: float32 kernels differ in their last digits
CHECK_IMAGES = 64  # test images the export is checked on
EXIT_MISMATCH = 1
INSTALL_ONNX = "pip install -e '.[onnx]'"


class Exported(NamedTuple):
    """What ``export`` wrote and how close the export's logits are to MXNet's."""
    paths: list
    difference: float  # largest |logit difference| on the test images
    largest_logit: float  # largest |logit| of MXNet on them
    num_images: int


class Mismatch(ValueError):
    """The export computes other logits than MXNet."""


# Helpers

def output_paths(out, format):
    """The files ``format`` writes for ``--out out``: ``[out]`` or the MXNet pair."""
    return [out] if format == 'onnx' else [f'{out}-symbol.json', f'{out}-0000.params']


def check_output(paths, force):
    """Raise unless every path of ``paths`` can be written: an existing folder we may
    write to, no folder in the way, no file in the way unless ``force``."""
    for path in paths:
        folder = os.path.dirname(path) or '.'
        if not os.path.isdir(folder):
            raise ValueError(f'{path}: no folder {folder}: create it first')
        if os.path.isdir(path):
            raise ValueError(f'{path} is a folder: expected a file path')
        if os.path.exists(path) and not force:
            raise ValueError(f'{path} exists: choose another path, or --force to replace it')
        if not os.access(folder, os.W_OK):
            raise ValueError(f'{path}: the folder {folder} is read-only: expected a '
                             'writable folder')


def write_all(paths, contents):
    """Write each of ``contents`` (bytes) to its path of ``paths``: all of them to
    temporary files first, then each renamed into place (``files.commit``)."""
    temporaries = [f'{path}.tmp' for path in paths]
    try:
        for temporary, content in zip(temporaries, contents):
            Path(temporary).write_bytes(content)
        for temporary, path in zip(temporaries, paths):
            commit(temporary, path)
    finally:
        for temporary in temporaries:
            if os.path.exists(temporary):
                os.remove(temporary)


def import_onnx():
    """``(onnx, onnxruntime)``, or a ``ValueError`` that names the extra to install."""
    try:
        import onnx
        import onnxruntime
        import mxnet.onnx  # noqa: F401  (mx.onnx.export_model)
    except ImportError as error:
        raise ValueError(f'ONNX export needs the onnx extra (onnx and onnxruntime), which is '
                         f'not installed ({error}): {INSTALL_ONNX}') from None
    return onnx, onnxruntime


def check_batch(args, data):
    """``X : (CHECK_IMAGES, C, H, W)``, the first test images of the run's data,
    preprocessed as in training (the run's data, image_size, data_dir)."""
    _, test_iter, _ = load_data(data['name'], CHECK_IMAGES, args.get('image_size'),
                                args.get('data_dir'))
    return next(iter(test_iter))[0]


def metadata(args, data):
    """The ONNX file's ``metadata_props``: strings, JSON where not plain."""
    return {
        'model': str(args.get('model', '')), 'data': data['name'],
        'classes': json.dumps(data['classes']), 'image_shape': json.dumps(data['image_shape']),
        'mean': json.dumps(data['mean']), 'std': json.dumps(data['std']),
        'pixel_max': str(pixel_max(data['name'])),
        'dataset_size': json.dumps(native_size(data['name'])),
        'preprocessing': 'pixels p of an 8-bit image (0..255, channels as image_shape), of '
                         'dataset_size [H, W] where not null: x = (round(p * pixel_max / 255) '
                         '- mean) / std per channel, then a bilinear resize to image_shape '
                         '(half-pixel centres, averaging when shrinking); softmax(logits) '
                         'are the probabilities of the classes',
    }


def to_onnx(prefix, input_shape, meta):
    """The ONNX model (bytes) of the MXNet export ``prefix``-symbol.json/-0000.params,
    batch axis dynamic, initializers out of the graph inputs, output named ``logits``."""
    onnx, _ = import_onnx()
    path = f'{prefix}.onnx'
    mx.onnx.export_model(f'{prefix}-symbol.json', f'{prefix}-0000.params', [input_shape],
                         [np.float32], path, dynamic=True,
                         dynamic_input_shapes=[(None, *input_shape[1:])])
    model = onnx.load(path)
    graph = model.graph
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]
    del graph.input[:]  # else onnxruntime warns once per parameter
    graph.input.extend(inputs)
    old, new = graph.output[0].name, 'logits'
    for node in graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
    graph.output[0].name = new
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = 'N'
    model.producer_name = 'gluon_resnet'
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def max_difference(run_export, net, X):
    """``(largest |logit difference|, largest |logit|)`` of ``run_export(X)`` against ``net(X)``."""
    expected = net(X).asnumpy()
    return float(np.abs(run_export(X) - expected).max()), float(np.abs(expected).max())


def _export_and_reload(net, prefix, format, args, data):
    """``(contents of the files of format, a function X -> logits of the export)``; ``net``
    is hybridized and has run, ``prefix`` is in a temporary folder."""
    net.export(prefix)
    symbol_file, params_file = output_paths(prefix, 'mxnet')
    if format == 'mxnet':
        with warnings.catch_warnings():  # "Cannot decide type for ... data": it is float32
            warnings.simplefilter('ignore', UserWarning)
            block = gluon.SymbolBlock.imports(symbol_file, ['data'], params_file)
        return ([Path(symbol_file).read_bytes(), Path(params_file).read_bytes()],
                lambda X: block(X).asnumpy())
    _, onnxruntime = import_onnx()
    model = to_onnx(prefix, (1, *data['image_shape']), metadata(args, data))
    session = onnxruntime.InferenceSession(model, providers=['CPUExecutionProvider'])
    return [model], lambda X: session.run(None, {'data': X.asnumpy()})[0]


# Export

def export(run_dir, out, format='onnx', force=False):
    """Export the best checkpoint of ``run_dir`` to ``out`` (see the module docstring).

    Returns an ``Exported``; raises ``ValueError`` if the export fails,
    ``Mismatch`` if it differs by more than ``TOLERANCE`` of the largest logit
    (then nothing is written).
    """
    result, contents = _converted(run_dir, out, format, force)
    write_all(result.paths, contents)
    return result


def _converted(run_dir, out, format, force):
    """``(Exported, the contents of its files)``: ``export`` but the writing."""
    if format not in FORMATS:
        raise ValueError(f'format {format!r}: expected one of {", ".join(FORMATS)}')
    paths = output_paths(os.fspath(out), format)
    check_output(paths, force)
    if format == 'onnx':
        import_onnx()  # before the work: a missing extra is said at once
    net, args, data = load_trained(run_dir)
    net.hybridize()
    X = check_batch(args, data)
    net(X)  # builds the graph that net.export saves
    with tempfile.TemporaryDirectory() as folder:
        try:
            files, run_export = _export_and_reload(net, os.path.join(folder, 'model'), format,
                                                   args, data)
            difference, largest = max_difference(run_export, net, X)
        except Exception as error:  # the converters raise anything: name the model instead
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ValueError(f'{args.get("model", "the model")} of {run_dir} failed to export '
                             f'to {format}: {reason}') from error
    if difference > TOLERANCE * largest:
        raise Mismatch(f'the {format} export differs from MXNet by {difference:.3g} on '
                       f'{len(X)} test images, more than {TOLERANCE:g} of the largest logit '
                       f'{largest:.3g}: nothing written')
    return Exported(paths, difference, largest, len(X)), files


# Command line

def make_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', metavar='RUN_DIR', required=True,
                        help='the run directory whose best.ckpt is exported')
    parser.add_argument('--format', choices=FORMATS, required=True,
                        help='onnx: one .onnx file; mxnet: OUT-symbol.json and OUT-0000.params')
    parser.add_argument('--out', metavar='PATH', required=True,
                        help='the .onnx file, or the prefix of the MXNet pair')
    parser.add_argument('--force', action='store_true', help='replace existing files')
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    for signum in SIGNALS:  # stop and remove the temporary files, exit 130
        signal.signal(signum, interrupt_handler(PROG))
    try:
        result, contents = _converted(args.run, args.out, args.format, args.force)
    except Mismatch as error:
        print(f'{PROG}: error: {error}', file=sys.stderr)
        sys.exit(EXIT_MISMATCH)
    announce_threads()  # after the checks and the conversion, which may fail: one line then
    ignore_signals()  # from here the export is written whole and said so, exit 0
    write_all(result.paths, contents)
    checker = 'onnxruntime' if args.format == 'onnx' else 'SymbolBlock.imports'
    print(f'{checker} vs MXNet on {result.num_images} test images: max abs difference '
          f'{result.difference:.2g} ({result.difference / result.largest_logit:.2g} of the '
          f'largest logit, {result.largest_logit:.3g})')
    print(f'wrote {", ".join(result.paths)}')


if __name__ == '__main__':
    run(main, PROG)
