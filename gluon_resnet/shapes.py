"""Print a net's layers: output shape, trainable parameters and multiply-adds.

d2l's shape loop for any model of ``list_models()``, with the counts of
He et al. 2015, Table 1 (multiply-adds of the convs and the FC layer).

Examples::

    python -m gluon_resnet.shapes                  # d2l's resnet18 on 1x1x224x224
    python -m gluon_resnet.shapes --depth 1        # only its top-level layers
    python -m gluon_resnet.shapes --model resnet50_v1 --input-shape 1,3,224,224 --depth 2
    python -m gluon_resnet.shapes --model cifar_resnet20_v1 --input-shape 1,3,32,32
    python -m gluon_resnet.shapes --list-models

Depth 1 lists the stem layers, the stages and the output layer, depth 2 the
blocks inside each stage, depth 3 the layers inside each block; without
``--depth`` every layer is listed.  Counts are for the whole input shape:
keep batch 1 for per-image numbers.
"""
import argparse

from ._cli import ArgumentParser, run
from .models import get_model, list_models
from .report import layer_report

PROG = 'python -m gluon_resnet.shapes'


def input_shape(text):
    """``'1,3,224,224'`` -> ``(1, 3, 224, 224)``."""
    error = argparse.ArgumentTypeError(
        f'expected 4 comma-separated positive integers N,C,H,W, got {text!r}')
    try:
        shape = tuple(int(n) for n in text.split(','))
    except ValueError:
        raise error from None
    if len(shape) != 4 or min(shape) < 1:
        raise error
    return shape


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return int(text)


def parse_args(argv=None):
    parser = ArgumentParser(prog=PROG, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='resnet18',
                        help='model name, see --list-models (default: resnet18)')
    parser.add_argument('--input-shape', type=input_shape, default=(1, 1, 224, 224),
                        metavar='N,C,H,W', help='input batch shape (default: 1,1,224,224)')
    parser.add_argument('--depth', type=positive_int, metavar='N',
                        help='levels to list: 1 stages, 2 blocks, 3 layers '
                             '(default: every layer)')
    parser.add_argument('--list-models', action='store_true',
                        help='print the model names and exit')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list_models:
        print('\n'.join(list_models()))
        return
    net = get_model(args.model)
    print(layer_report(net, args.input_shape, args.depth))


if __name__ == '__main__':
    run(main, PROG)
