"""Tests of ``gluon_resnet.predict``: files as training saw them, the CLI, conversions, bad input.

One run is trained per module: CIFAR ResNet-20 on the digits at 16x16, one
epoch (about 6 s).  The image files are real test digits saved at 8 bits.
"""
import json
import os
import re
import shutil
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import WITHOUT_ROOT_OVERRIDE, cli_error, python_m, train_digits_run
from gluon_resnet._cli import run
from gluon_resnet.data import load_data, load_dataset
from gluon_resnet.predict import (PROG, from_8bit, load_trained, main, predict, to_8bit,
                                  to_raw_pixels)

NUM_IMAGES = 64  # one test batch


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    return train_digits_run(tmp_path_factory.mktemp('runs') / 'digits')


@pytest.fixture(scope='module')
def digit_files(tmp_path_factory):
    """The first test digits as 8-bit PNG files (a folder), and their raw images."""
    folder = tmp_path_factory.mktemp('digits')
    images = load_dataset('digits').test_images[:NUM_IMAGES, 0]  # 0..16
    for i, image in enumerate(images):
        Image.fromarray(to_8bit(image, 'digits')).save(folder / f'{i:02d}.png')
    return folder, images


def check_error(argv, message, capsys):
    """``argv`` fails with exit code 2 and one line on stderr matching ``message``."""
    error = cli_error(main, PROG, argv, capsys)
    assert re.search(message, error), error


def test_digits_survive_the_8bit_round_trip_exactly():
    raw = np.arange(17, dtype=np.uint8)
    assert to_8bit(raw, 'digits').tolist()[:3] == [0, 16, 32] and to_8bit(raw, 'digits')[-1] == 255
    assert (from_8bit(to_8bit(raw, 'digits'), 'digits') == raw).all()
    pixels = np.arange(256, dtype=np.uint8)
    assert (from_8bit(pixels, 'fashion-mnist') == pixels).all()  # 8-bit data: unchanged


def test_a_png_predicts_as_the_training_loader(run_dir, digit_files):
    """The files of test images get the probabilities that the test loader's
    batch of the same images gets: the same preprocessing code on the same raw
    pixels (the PNG round trip is exact), the same net; only the float kernels
    may differ in the last bits, for other batch shapes."""
    folder, images = digit_files
    _, test_iter, _ = load_data('digits', NUM_IMAGES, image_size=16)
    X, _ = next(iter(test_iter))
    net, _, _ = load_trained(run_dir)
    expected = net(X).softmax().asnumpy()
    predictions = predict(run_dir, folder, top_k=10)
    assert [p.source for p in predictions] == [str(folder / f'{i:02d}.png')
                                              for i in range(NUM_IMAGES)]
    probabilities = np.zeros_like(expected)
    for row, p in zip(probabilities, predictions):
        row[list(p.classes)] = p.probabilities
        assert p.note is None  # 8x8 grey: what training saw
        assert p.names == tuple(str(c) for c in p.classes)
    assert (probabilities.argmax(axis=1) == expected.argmax(axis=1)).all()
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-5)
    # An array in memory is an 8-bit image too: the same answer as its file.
    [from_array] = predict(run_dir, to_8bit(images[0], 'digits'), top_k=10)
    [from_file] = predict(run_dir, folder / '00.png', top_k=10)
    assert from_array.source == '<array 0>' and from_array[1:] == from_file[1:]


def test_the_cli_prints_what_the_python_api_returns(run_dir, digit_files, tmp_path, capsys):
    folder, images = digit_files
    png, jpeg = tmp_path / 'seven.png', tmp_path / 'seven.JPG'
    Image.fromarray(to_8bit(images[7], 'digits')).save(png)
    Image.fromarray(to_8bit(images[7], 'digits')).resize((28, 28)).convert('RGB').save(jpeg)
    result = python_m('gluon_resnet.predict', '--run', run_dir, png, jpeg, '--json')
    assert result.returncode == 0, result.stderr
    assert result.stderr == 'using 1 CPU thread (from OMP_NUM_THREADS)\n'
    printed = json.loads(result.stdout)
    expected = [p.to_json() for p in predict(run_dir, [png, jpeg])]
    assert [p['file'] for p in printed] == [str(png), str(jpeg)]
    assert [p['note'] for p in printed] == [None, 'resized 28x28 to 8x8']  # RGB, but grey
    for got, want in zip(printed, expected):
        assert [c['class'] for c in got['top_k']] == [c['class'] for c in want['top_k']]
        assert [c['probability'] for c in got['top_k']] == pytest.approx(
            [c['probability'] for c in want['top_k']], rel=1e-6)  # another process
    run(lambda: main(['--run', run_dir, str(jpeg), '--top-k', '2']), PROG)
    first = expected[1]['top_k']
    assert capsys.readouterr().out.splitlines() == [
        f'{jpeg}: {first[0]["name"]} {first[0]["probability"]:.1%}, '
        f'{first[1]["name"]} {first[1]["probability"]:.1%}',
        '  note: resized 28x28 to 8x8']


def test_conversions_are_made_and_noted(run_dir, tmp_path):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / 'colour.png')
    [prediction] = predict(run_dir, tmp_path / 'colour.png')
    assert prediction.note == 'colour converted to grey (luminance)'
    digits = {'name': 'digits', 'image_shape': [1, 16, 16]}
    pixels, _ = to_raw_pixels(Image.fromarray(colour), 'colour', digits)
    luminance = np.asarray(Image.fromarray(colour).convert('L'))  # ITU-R 601-2 luma
    assert (pixels[0] == from_8bit(luminance, 'digits')).all()
    grey = rng.integers(0, 256, size=(32, 32), dtype=np.uint8)
    cifar = {'name': 'cifar10', 'image_shape': [3, 32, 32]}
    pixels, note = to_raw_pixels(Image.fromarray(grey), 'grey', cifar)
    assert note == 'grey repeated to RGB' and (pixels == grey).all() and pixels.shape == (3, 32, 32)
    # Another size is first brought to the dataset's own (digits 8x8), as training's images.
    pixels, note = to_raw_pixels(Image.fromarray(colour).resize((40, 30)), 'big', cifar)
    assert note == 'resized 40x30 to 32x32' and pixels.shape == (3, 32, 32)
    digit = load_dataset('digits').test_images[0, 0]
    big = np.kron(to_8bit(digit, 'digits'), np.ones((4, 4), np.uint8))  # 4x4 blocks: 32x32
    pixels, note = to_raw_pixels(Image.fromarray(big), 'big digit', digits)
    assert note == 'resized 32x32 to 8x8' and (pixels[0] == digit).all()  # averaged back


def test_bad_input(run_dir, digit_files, tmp_path, capsys):
    folder, _ = digit_files
    png = str(folder / '00.png')
    (tmp_path / 'text.png').write_text('not an image\n')
    (tmp_path / 'truncated.png').write_bytes((folder / '00.png').read_bytes()[:-12])  # no end
    (tmp_path / 'empty').mkdir()
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / 'clear.png')
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / 'deep.png')
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / 'anim.gif')
    for argv, message in [
            ([tmp_path / 'text.png'], r'text\.png is not an image: expected a PNG or JPEG file$'),
            ([tmp_path / 'truncated.png'], r'truncated\.png is truncated or corrupted: expected a '
                                           'complete PNG or JPEG file'),
            ([tmp_path / 'missing.png'], r'missing\.png: no such file or folder: expected a PNG'),
            ([tmp_path / 'empty'], r'empty: a folder without PNG or JPEG files'),
            ([tmp_path / 'clear.png'], r'clear\.png has transparent pixels: expected an opaque'),
            ([tmp_path / 'deep.png'], r'deep\.png has 16-bit pixels: expected 8 bits'),
            ([tmp_path / 'anim.gif'], r'anim\.gif is a GIF image: expected PNG or JPEG'),
            ([png, '--top-k', '11'], r'top_k must be an integer from 1 to 10, got 11'),
            ([png, '--top-k', '0'], r'--top-k: expected a positive integer')]:
        check_error(['--run', run_dir, *argv], message, capsys)


def test_bad_run_directory(run_dir, digit_files, tmp_path, capsys):
    png = str(digit_files[0] / '00.png')
    check_error(['--run', str(tmp_path / 'nothing'), png], 'no run directory .*nothing$', capsys)
    bad = tmp_path / 'run'
    bad.mkdir()
    check_error(['--run', str(bad), png], 'has no config.json', capsys)
    shutil.copy(os.path.join(run_dir, 'config.json'), bad)
    check_error(['--run', str(bad), png], r'run has no best\.ckpt: expected a run that finished',
                capsys)
    checkpoint = bytearray(open(os.path.join(run_dir, 'best.ckpt'), 'rb').read())
    checkpoint[len(checkpoint) // 2] ^= 0xFF
    (bad / 'best.ckpt').write_bytes(bytes(checkpoint))
    check_error(['--run', str(bad), png], r'checkpoint .*best\.ckpt is (truncated or )?corrupted',
                capsys)
    config = json.loads((bad / 'config.json').read_text())
    del config['data']
    (bad / 'config.json').write_text(json.dumps(config))
    check_error(['--run', str(bad), png], r'config\.json has no "data" record', capsys)


def test_unreadable_file(run_dir, digit_files, tmp_path):
    secret = tmp_path / 'secret.png'
    shutil.copy(digit_files[0] / '00.png', secret)
    secret.chmod(0o000)
    result = python_m('gluon_resnet.predict', '--run', run_dir, secret,
                      prefix=WITHOUT_ROOT_OVERRIDE)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f'{PROG}: error: {secret}: permission denied: choose a path you can read and write']


@pytest.mark.parametrize('side, size', [
    (10000, '10000x10000 pixels'),  # Pillow warns (above 89 megapixels), in two lines
    (14000, 'over 179 megapixels'),  # Pillow refuses (above 179) before it says the size
])
def test_a_huge_image_is_refused_in_one_line(run_dir, tmp_path, side, size):
    """Before it is decoded, in the package's words; a 1-bit black PNG is a few KB."""
    huge = tmp_path / 'huge.png'
    Image.new('1', (side, side)).save(huge)
    message = f'{huge}: {size}, expected at most 64 megapixels: shrink it first'
    result = python_m('gluon_resnet.predict', '--run', run_dir, huge)
    assert (result.returncode, result.stderr) == (2, f'{PROG}: error: {message}\n')
    with warnings.catch_warnings():
        warnings.simplefilter('error', Image.DecompressionBombWarning)
        with pytest.raises(ValueError) as error:
            predict(run_dir, huge)
    assert str(error.value) == message


def test_a_run_of_fit_from_python_predicts_without_net(tmp_path):
    """fit records the model_args of a get_model net in config.json: predict
    rebuilds it; a net get_model did not build still needs net=."""
    from gluon_resnet import fit, get_model
    from gluon_resnet.checkpoint import RunDir
    train_iter, test_iter, info = load_data('digits', 64, image_size=16)
    net = get_model('cifar_resnet20_v1', num_classes=10)
    fit(net, train_iter, test_iter, 1, 0.05, 'cpu', out=RunDir(tmp_path / 'run', data=info))
    image = to_8bit(load_dataset('digits').test_images[0, 0], 'digits')
    [rebuilt] = predict(str(tmp_path / 'run'), image)
    [given] = predict(str(tmp_path / 'run'), image, net=get_model('cifar_resnet20_v1'))
    assert rebuilt == given
    config = json.loads((tmp_path / 'run' / 'config.json').read_text())
    del config['model']
    (tmp_path / 'run' / 'config.json').write_text(json.dumps(config))
    with pytest.raises(ValueError, match='pass net='):
        predict(str(tmp_path / 'run'), image)
