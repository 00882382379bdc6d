"""Print a net's layers: output shape, trainable parameters and multiply-adds.

d2l's shape loop for any model of ``list_models()``, with the counts of
He et al. 2015, Table 1 (multiply-adds of the convs and the FC layer).

Examples::

    python -m gluon_resnet.shapes                  # d2l's resnet18 on 1x1x224x224
    python -m gluon_resnet.shapes --depth 1        # only its top-level layers
    python -m gluon_resnet.shapes --input-shape 1,1,96,96 --depth 1   # as d2l trains it
    python -m gluon_resnet.shapes --model resnet50_v1 --depth 2
    python -m gluon_resnet.shapes --model cifar_resnet20_v1
    python -m gluon_resnet.shapes --list-models

Without ``--input-shape`` a net gets one image of the shape it was designed
for (``--list-models`` shows them: 3x224x224 for the ImageNet nets, 3x32x32
for the CIFAR nets, 1x224x224 for d2l's resnet18).  Depth 1 lists the stem
layers, the stages and the output layer, depth 2 the blocks inside each
stage, depth 3 the layers inside each block; without ``--depth`` every layer
is listed.  Counts are for the whole input shape: keep batch 1 for per-image
numbers.
"""
import argparse

from ._cli import ArgumentParser, positive_int, run
from .models import get_model, model_info
from .report import layer_report, model_table

PROG = 'python -m gluon_resnet.shapes'


def input_shape(text):
    """``'1,3,224,224'`` -> ``(1, 3, 224, 224)``; a one-line error otherwise."""
    error = argparse.ArgumentTypeError(
        f'expected 4 comma-separated positive integers N,C,H,W, got {text!r}')
    try:
        shape = tuple(int(n) for n in text.split(','))
    except ValueError:
        raise error from None
    if len(shape) != 4 or min(shape) < 1:
        raise error
    return shape


def parse_args(argv=None):
    parser = ArgumentParser(prog=PROG, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='resnet18',
                        help='model name, see --list-models (default: resnet18)')
    parser.add_argument('--input-shape', type=input_shape, metavar='N,C,H,W',
                        help="input batch shape (default: 1 image of the model's "
                             'input shape, see --list-models)')
    parser.add_argument('--depth', type=positive_int, metavar='N',
                        help='levels to list: 1 stages, 2 blocks, 3 layers '
                             '(default: every layer)')
    parser.add_argument('--list-models', action='store_true',
                        help='print the models: description, input shape, classes, '
                             'parameters; and exit')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list_models:
        print(model_table())
        return
    shape = args.input_shape or (1,) + model_info(args.model).input_shape
    print(layer_report(get_model(args.model), shape, args.depth))


if __name__ == '__main__':
    run(main, PROG)
