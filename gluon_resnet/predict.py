"""Predict the classes of your own PNG and JPEG images with a trained run.

Examples::

    python -m gluon_resnet.predict --run runs/resnet18-digits-20261124-101500 my_digit.png
    python -m gluon_resnet.predict --run RUN_DIR photos/ --top-k 5 --json

``predict(run_dir, inputs)`` loads the run's ``best.ckpt`` and applies the
preprocessing of training, from the run's config.json ``data`` record:

1. decode the file (Pillow; EXIF rotation applied), 8 bits per channel;
2. match the channels: colour to grey by luminance (ITU-R 601, as Pillow)
   for a grey model, grey repeated to RGB for a colour one;
3. resize to the dataset's own size (digits 8x8, Fashion-MNIST 28x28,
   CIFAR-10 32x32), the size the training images had before the loader
   resized them, by averaging (Pillow's box filter);
4. map 0..255 to the dataset's raw pixel range: ``round(p * pixel_max / 255)``
   (digits are 0..16: the round trip 0..16 -> 0..255 -> 0..16 of ``to_8bit``
   and back is exact);
5. the test loader of training (``data.ArrayLoader``): ``(x - mean) / std``
   per channel, then the bilinear resize to the run's image size.

Each conversion that makes a file unlike the training images (colour, size)
is reported in the prediction's ``note``.  An ambiguous file is refused:
transparent pixels (on what background?), 16-bit or floating-point pixels.
A file of more than ``MAX_MEGAPIXELS`` (64) megapixels is refused before it
is decoded: shrink it first.

Exit codes: 0 done; 2 a bad argument, image or run directory (one line on
stderr).
"""
import argparse
import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple, Optional

import mxnet as mx
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import _arrays
from ._cli import ArgumentParser, announce_threads, positive_int, run
from .checkpoint import DATA_KEYS, load_checkpoint, read_config
from .checks import check_int
from .data.datasets import DATASETS_BY_NAME
from .data.loader import ArrayLoader
from .models import get_model

__all__ = ['predict', 'Prediction', 'load_trained', 'to_8bit', 'from_8bit', 'pixel_max',
           'native_size', 'IMAGE_SUFFIXES']

PROG = 'python -m gluon_resnet.predict'
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')  # what a folder is searched for, any case
IMAGE_FORMATS = ('PNG', 'JPEG', 'MPO')  # as Pillow names them; MPO: a phone camera's JPEG
BATCH_SIZE = 64
# The largest file decoded: every image is shrunk to 32x32 pixels or fewer, and a bigger
# one costs seconds and GBs (8000x8000 RGB: 192 MB decoded, 256 MB as RGBA) for nothing.
MAX_MEGAPIXELS = 64


class Prediction(NamedTuple):
    """The ``top_k`` most likely classes of one image, most likely first."""
    source: str  # the file, or '<array i>' / '<image i>' for the i-th input given in memory
    classes: tuple  # class indices
    names: tuple  # their names
    probabilities: tuple  # softmax probabilities, floats
    note: Optional[str]  # the conversions made, or None

    def to_json(self):
        return {'file': self.source, 'note': self.note,
                'top_k': [{'class': c, 'name': n, 'probability': p}
                          for c, n, p in zip(self.classes, self.names, self.probabilities)]}


# Helpers: the raw pixels of a dataset

def pixel_max(data_name):
    """The largest raw pixel value of dataset ``data_name`` (255 for one we do not know)."""
    return DATASETS_BY_NAME[data_name].pixel_max if data_name in DATASETS_BY_NAME else 255


def native_size(data_name):
    """``[H, W]`` of the images of dataset ``data_name``; ``None`` if any or unknown."""
    record = DATASETS_BY_NAME.get(data_name)
    return list(record.native_size) if record and record.native_size else None


def to_8bit(images, data_name):
    """Raw pixels of dataset ``data_name`` (e.g. digits 0..16) as uint8 0..255, to save
    as PNG: ``round(x * 255 / pixel_max)``; ``from_8bit`` inverts it exactly."""
    top = pixel_max(data_name)
    return np.round(np.asarray(images, np.float64) * (255 / top)).astype(np.uint8)


def from_8bit(pixels, data_name):
    """uint8 0..255 as the raw pixels of dataset ``data_name``: ``round(p * pixel_max / 255)``."""
    top = pixel_max(data_name)
    if top == 255:
        return pixels
    return np.round(pixels.astype(np.float64) * (top / 255)).astype(np.uint8)


# Helpers: reading images

def expand_inputs(inputs):
    """``[(source, path or in-memory image)]`` of ``inputs``: a path, a folder (its
    PNG and JPEG files, sorted), a numpy array or a PIL image, or a list of them."""
    single = isinstance(inputs, (str, os.PathLike, np.ndarray)) or hasattr(inputs, 'getbands')
    items = []
    for i, item in enumerate([inputs] if single else list(inputs)):
        if isinstance(item, np.ndarray):
            items.append((f'<array {i}>', item))
        elif hasattr(item, 'getbands'):  # a PIL image
            items.append((f'<image {i}>', item))
        elif isinstance(item, (str, os.PathLike)):
            items.extend((str(path), path) for path in _files(Path(item)))
        else:
            raise ValueError(f'input {i} is a {type(item).__name__}: expected a path, a folder, '
                             'a uint8 array (H, W) or (H, W, 3) or a PIL image')
    if not items:
        raise ValueError('no images given: expected PNG or JPEG files or folders of them')
    return items


def _files(path):
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise ValueError(f'{path}: a folder without PNG or JPEG files (expected '
                             f'{", ".join("*" + s for s in IMAGE_SUFFIXES)})')
        return files
    if not path.exists():
        raise FileNotFoundError(f'{path}: no such file or folder: expected a PNG or JPEG '
                                'file, or a folder of them')
    return [path]


def open_image(source, item):
    """The decoded ``PIL.Image`` of a path, uint8 array or PIL image; a
    ``ValueError`` naming ``source`` if it is no complete PNG or JPEG."""
    if isinstance(item, np.ndarray):
        array = item[..., 0] if item.ndim == 3 and item.shape[2] == 1 else item
        if array.dtype != np.uint8 or not (array.ndim == 2 or
                                           (array.ndim == 3 and array.shape[2] in (3, 4))):
            raise ValueError(f'{source}: a {item.dtype} array of shape {item.shape}: expected '
                             'uint8 (H, W) grey or (H, W, 3) RGB or (H, W, 4) RGBA, 0..255')
        return Image.fromarray(array)
    if not isinstance(item, Path):
        return item
    with open(item, 'rb') as file, warnings.catch_warnings():  # OSError: the CLI names the path
        # Pillow warns in two lines above 89 megapixels: MAX_MEGAPIXELS refuses in one
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        try:
            image = Image.open(file)  # reads the header only
            if image.format not in IMAGE_FORMATS:
                raise ValueError(f'{source} is a {image.format} image: expected PNG or JPEG')
            width, height = image.size
            if width * height > MAX_MEGAPIXELS * 1e6:
                raise ValueError(too_big(source, f'{width}x{height} pixels'))
            if image.format == 'PNG':  # load() ignores a missing end; verify() reads all
                image.verify()
                file.seek(0)
                image = Image.open(file)
            image.load()
        except UnidentifiedImageError:
            raise ValueError(f'{source} is not an image: expected a PNG or JPEG file') from None
        except Image.DecompressionBombError:  # Image.open refuses it before saying its size
            raise ValueError(too_big(source, f'over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} '
                                             'megapixels')) from None
        except (OSError, SyntaxError, EOFError) as error:
            raise ValueError(f'{source} is truncated or corrupted: expected a complete PNG '
                             f'or JPEG file ({error})') from None
    return ImageOps.exif_transpose(image)  # photos: the camera's rotation


def too_big(source, size):
    """The error for an image file of ``size`` (words) above ``MAX_MEGAPIXELS``."""
    return f'{source}: {size}, expected at most {MAX_MEGAPIXELS} megapixels: shrink it first'


def to_raw_pixels(image, source, data):
    """The raw pixels the run's model expects, uint8 ``(C, H, W)``, and the
    conversions made (a string, or None) for ``image`` (a ``PIL.Image``); ``data``
    is config.json's ``data`` record."""
    channels, mode = data['image_shape'][0], image.mode
    if channels not in (1, 3):
        raise ValueError(f'the run was trained on {channels}-channel images: expected 1 or 3')
    if mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
        raise ValueError(f'{source} has {"floating-point" if mode == "F" else "16-bit"} '
                         'pixels: expected 8 bits per channel')
    grey = mode in ('1', 'L', 'LA', 'La')
    image = image.convert('LA' if grey else 'RGBA')
    if np.asarray(image)[..., -1].min() < 255:
        raise ValueError(f'{source} has transparent pixels: expected an opaque image '
                         '(flatten it onto the background you mean)')
    # The training images had the dataset's own size (digits 8x8) before the
    # loader resized them: another size is brought to it first, by averaging
    # (a box filter, as the digits were made: each pixel counts a 4x4 block),
    # so that the loader's resize blurs (or sharpens) it as it did them.
    height, width = native_size(data['name']) or data['image_shape'][1:]
    size = image.size
    if size != (width, height):
        image = image.resize((width, height), Image.BOX)
    array, notes = np.asarray(image)[..., :-1], []
    if channels == 1 and not grey:
        if not (array == array[..., :1]).all():  # RGB of greys: its luminance is the grey
            notes.append('colour converted to grey (luminance)')
        array = np.asarray(image.convert('L'))[..., None]
    elif channels == 3 and grey:
        array = np.repeat(array, 3, axis=2)
        notes.append('grey repeated to RGB')
    if size != (width, height):
        notes.append(f'resized {size[0]}x{size[1]} to {width}x{height}')
    return from_8bit(array, data['name']).transpose(2, 0, 1), '; '.join(notes) or None


def preprocess(pixels, data):
    """``X : (1, C, H', W')`` float32 of raw pixels ``(C, H, W)`` through the test loader of
    training: ``(x - mean) / std`` per channel, then the resize to the run's image size."""
    loader = ArrayLoader(pixels[None], np.zeros(1), 1, data['mean'], data['std'],
                         tuple(data['image_shape'][1:]))
    return next(iter(loader))[0]


# Helpers: the run

def read_data_record(run_dir):
    """config.json's ``args`` and ``data`` record of ``run_dir``, checked."""
    config = read_config(run_dir)
    data = config.get('data')
    path = os.path.join(run_dir, 'config.json')
    if not isinstance(data, dict):
        raise ValueError(f'{path} has no "data" record (classes, image shape, mean, std): '
                         'expected a run of python -m gluon_resnet.train, or of fit(out='
                         'RunDir(path, data=info))')
    shape, classes = data.get('image_shape'), data.get('classes')
    if not set(DATA_KEYS) <= set(data) or not isinstance(classes, list) or not classes \
            or not isinstance(shape, list) or len(shape) != 3 \
            or not len(data['mean']) == len(data['std']) == shape[0]:
        raise ValueError(f'{path} is corrupted: expected "data" with {", ".join(DATA_KEYS)}, '
                         'image_shape [C, H, W] and C means and stds')
    return config['args'], data


def load_trained(run_dir, net=None, ctx=None):
    """``(net, args, data)``: the net of ``run_dir`` with the parameters of its
    ``best.ckpt``, and config.json's ``args`` and ``data`` record.

    ``net``: a net of the run's architecture, for a run of a net that
    ``models.get_model`` did not build; default: config.json's ``model`` record
    (``get_model(name, **kwargs)``), or for a CLI run of an earlier version
    ``get_model(args['model'])``.
    """
    args, data = read_data_record(run_dir)
    model = read_config(run_dir).get('model')
    if net is None and isinstance(model, dict) and isinstance(model.get('name'), str):
        net = get_model(model['name'], **model.get('kwargs', {}))
    elif net is None:
        if not isinstance(args.get('model'), str):
            raise ValueError(f'{os.path.join(run_dir, "config.json")} does not name the '
                             'model (its net was not built by get_model): pass net=, a net '
                             'of the run\'s architecture')
        net = get_model(args['model'], num_classes=len(data['classes']))
    best = os.path.join(run_dir, 'best.ckpt')
    if not os.path.isfile(best):
        raise FileNotFoundError(f'{run_dir} has no best.ckpt: expected a run that finished '
                                'at least one epoch')
    load_checkpoint(best, net, ctx)
    return net, args, data


# Prediction

def predict(run_dir, inputs, top_k=3, net=None, ctx=None):
    """The ``top_k`` most likely classes of each image of ``inputs``, by the
    best checkpoint of the run in ``run_dir``.

    Parameters
    ----------
    run_dir : str
        A run directory (``python -m gluon_resnet.train``'s ``--out``).
    inputs : path, folder, array, PIL image, or a list of them
        PNG or JPEG files, folders of them (their ``*.png``, ``*.jpg``,
        ``*.jpeg``, sorted), uint8 arrays ``(H, W)`` or ``(H, W, 3)`` 0..255.
    top_k : int, default 3
        At most the number of classes.
    net : gluon.Block, default None
        See ``load_trained``.
    ctx : mx.Context, default None (the CPU)

    Returns a list of ``Prediction``, one per image, in order.
    """
    net, _, data = load_trained(run_dir, net, ctx)
    top_k = check_int(top_k, 'top_k', 1, len(data['classes']))
    items = expand_inputs(inputs)
    X, notes = [], []
    for source, item in items:
        pixels, note = to_raw_pixels(open_image(source, item), source, data)
        X.append(preprocess(pixels, data))
        notes.append(note)
    logits = np.concatenate([net(_batch(X[i:i + BATCH_SIZE], ctx)).asnumpy()
                             for i in range(0, len(X), BATCH_SIZE)])
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True).astype(np.float64))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    predictions = []
    for (source, _), p, note in zip(items, probabilities, notes):
        best = np.argsort(-p, kind='stable')[:top_k]
        predictions.append(Prediction(source, tuple(int(c) for c in best),
                                      tuple(data['classes'][c] for c in best),
                                      tuple(float(p[c]) for c in best), note))
    return predictions


def _batch(arrays, ctx):
    """Concatenate the ``(1, C, H, W)`` arrays of ``preprocess`` on ``ctx`` (default: the CPU)."""
    return _arrays.arrays().concatenate(arrays, axis=0).as_in_context(ctx or mx.cpu())


# Command line

def make_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', metavar='RUN_DIR', required=True,
                        help='the run directory whose best.ckpt predicts')
    parser.add_argument('images', nargs='+', metavar='IMAGE_OR_FOLDER',
                        help='PNG or JPEG files, or folders of them')
    parser.add_argument('--top-k', type=positive_int, default=3, metavar='K',
                        help='the K most likely classes of each image (default: 3)')
    parser.add_argument('--json', action='store_true',
                        help='print a JSON list: per image its file, note and top_k '
                             '[{class, name, probability}]')
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    predictions = predict(args.run, args.images, top_k=args.top_k)
    announce_threads()  # after the checks of the run and every image: an error is one line
    if args.json:
        print(json.dumps([p.to_json() for p in predictions], indent=1))
        return
    for p in predictions:
        print(f'{p.source}: ' + ', '.join(f'{name} {probability:.1%}'
                                          for name, probability in zip(p.names, p.probabilities)))
        if p.note:
            print(f'  note: {p.note}')


if __name__ == '__main__':
    run(main, PROG)
