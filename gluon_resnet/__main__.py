"""``python -m gluon_resnet``: list the command-line tools.

The tools are the modules ``python -m gluon_resnet.<tool>``; this only says
which there are.  It imports nothing beyond ``sys`` (the package itself still
is imported first, as for every ``python -m``).
"""
import sys

# (tool, what it does): every module of the package that runs as ``python -m``
TOOLS = (
    ('train', 'train a ResNet on digits, Fashion-MNIST, CIFAR-10 or synthetic data'),
    ('shapes', "print a net's layers: output shapes, parameters and multiply-adds"),
    ('predict', 'predict the classes of your own PNG and JPEG images with a trained run'),
    ('export', "export a run's best checkpoint as ONNX or as MXNet symbol and parameters"),
    ('launch', 'train on several worker processes of a parameter-server job on this machine'),
    ('book', 'run the notebooks and write them, outputs and figures, as a static HTML site'),
)


def usage():
    """The text ``python -m gluon_resnet`` prints."""
    commands = [f'python -m gluon_resnet.{tool}' for tool, _ in TOOLS]
    width = max(map(len, commands))
    lines = ['gluon_resnet command-line tools (each lists its options with --help):', '']
    lines += [f'  {command:<{width}}  {about}' for command, (_, about) in zip(commands, TOOLS)]
    lines += ['', f'for example: {commands[0]} --help']
    return '\n'.join(lines)


def main(argv):
    if argv and argv[0] not in ('-h', '--help'):
        tools = {tool for tool, _ in TOOLS}
        hint = f'run python -m gluon_resnet.{argv[0]}' if argv[0] in tools \
            else f'the tools are {", ".join(sorted(tools))}'
        print(f'python -m gluon_resnet: error: unexpected argument {argv[0]!r}: {hint}',
              file=sys.stderr)
        return 2
    print(usage())
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
