"""Train a ResNet on a small image dataset; everything lands in a run directory.

Examples::

    python -m gluon_resnet.train          # d2l's resnet18 on digits: about 98% test acc
    python -m gluon_resnet.train --recipe fmnist-fast  # Fashion-MNIST to 92.4% in minutes
    python -m gluon_resnet.train --model cifar_resnet56_v1 --data cifar10 --epochs 160 \\
        --batch-size 128 --lr 0.1 --schedule step --ctx gpu:0,1 --amp
    python -m gluon_resnet.train --resume runs/resnet18-digits-20250101-120000
    python -m gluon_resnet.launch --workers 2 -- --kvstore dist_sync --epochs 4 --out runs/two

The run directory (``--out``, default ``runs/<model>-<data>-<YYYYmmdd-HHMMSS>``)
holds config.json (every argument: fit's settings under ``settings``, the
others under ``args``; the versions), metrics.jsonl (a line per epoch),
curves.png, last.ckpt and best.ckpt; see ``gluon_resnet.checkpoint``.
Ctrl-C or SIGTERM: the current step finishes, last.ckpt is written and the
command to resume is printed.  ``--resume DIR`` takes every setting from
DIR/config.json (only --ctx and --data-dir may change) and continues to the
epochs the run was started with; a resumed run equals an unbroken one.

Several processes (``--kvstore dist_sync``, ``dist_device_sync``,
``dist_async``): every worker of a parameter-server job runs this command with
the same arguments (``python -m gluon_resnet.launch`` starts the job), trains
on its shard of every batch, and worker 0 alone writes the run directory;
``--batch-size`` is the global batch.  See ``gluon_resnet.distributed``.

Exit codes: 0 done; 2 bad arguments, data or checkpoint (one line on
stderr); 3 the loss became NaN or infinite (the last checkpoint is kept);
130 stopped by SIGINT or SIGTERM.
"""
import argparse
import contextlib
import os
import shlex
import signal
import sys
import time

from ._cli import (EXIT_INTERRUPTED, ArgumentParser, abort_handler, announce_threads, fraction,
                   non_negative_float, non_negative_int, positive_float, positive_int, run)
from .checkpoint import RunDir, read_config
from .checks import check_amp
from .data import DATASETS, load_data
from .devices import get_ctx
from .distributed import KVSTORES, check_environment, connect, is_distributed
from .models import check_input, check_model_name, get_model
from .report import training_bytes
from .schedules import SCHEDULES
from .training import Interrupted, NonFiniteLoss, fit

PROG = 'python -m gluon_resnet.train'
EXIT_DIVERGED = 3  # not 1: that is Python's code for a crash with a traceback
MOVABLE = ('ctx', 'data_dir')  # where a run happens, not what it computes: may change on resume
# Flags newer than some run directories, with their defaults: config.json records one only when
# it is not the default, so a run of one process records what it always did.
ADDED = {'kvstore': None, 'recipe': None}
# The flags that are fit's settings, with their names there: config.json records them once, in
# ``settings``; its ``args`` holds the other flags (older run directories hold all there).
SETTING_OF_FLAG = {'epochs': 'num_epochs', 'lr': 'lr', 'schedule': 'schedule',
                   'warmup_epochs': 'warmup_epochs', 'wd': 'wd', 'momentum': 'momentum',
                   'label_smoothing': 'label_smoothing', 'seed': 'seed'}
# Named recipes: defaults for the flags they set; a flag on the command line overrides them.
RECIPES = {
    # Fashion-MNIST to d2l's 92.4% test accuracy (its 10-epoch ResNet-18 at 96x96) in minutes
    # on 2 CPU cores: the 20-layer CIFAR ResNet at the native 28x28, one warmup epoch then a
    # cosine decay from a large learning rate, label smoothing.  Measured: 92.9% after 6
    # epochs, 13.5 minutes on a 2-core AMD EPYC; 92.65-92.8%, 11.5-13.4 minutes on a 2-core
    # Intel Xeon (benchmarks/RESULTS.md).
    'fmnist-fast': dict(model='cifar_resnet20_v1', data='fashion-mnist', epochs=6,
                        batch_size=128, lr=0.2, schedule='cosine', warmup_epochs=1,
                        label_smoothing=0.1),
}
LAUNCH_PROG = 'python -m gluon_resnet.launch'


# Argument types: each error names the flag and what it expects (exit code 2).

def model_name(text):
    try:
        return check_model_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def make_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    # The defaults train resnet18 on digits to 99.2% test accuracy (98.6-99.4% for seeds
    # 0-2) in 33 s on 2 idle CPU cores; lr 0.05 or 0.1 reach only 90-94% in as many epochs.
    parser.add_argument('--recipe', choices=RECIPES,
                        help='a named set of defaults for the other flags, which override it: '
                             + '; '.join(f'{name}: {describe_recipe(name)}' for name in RECIPES))
    parser.add_argument('--model', type=model_name, default='resnet18',
                        help="a name of gluon_resnet.list_models() (default: resnet18, d2l's)")
    parser.add_argument('--data', choices=DATASETS, default='digits',
                        help='dataset (default: digits, 1797 8x8 images from scikit-learn)')
    parser.add_argument('--data-dir', metavar='DIR',
                        help='where datasets are read or downloaded to '
                             '(default: ~/.gluon_resnet/datasets)')
    parser.add_argument('--image-size', type=positive_int, metavar='PIXELS',
                        help='resize images to PIXELS x PIXELS (default: digits 32, '
                             'fashion-mnist 28, cifar10 32)')
    parser.add_argument('--epochs', type=positive_int, default=8,
                        help='passes over the training set (default: 8)')
    parser.add_argument('--batch-size', type=positive_int, default=64,
                        help='images per step, split over the devices (default: 64)')
    parser.add_argument('--lr', type=positive_float, default=0.02,
                        help='learning rate at the top of the schedule (default: 0.02)')
    parser.add_argument('--schedule', choices=SCHEDULES, default='cosine',
                        help='learning rate over the steps: constant; step, /10 at 50%% and '
                             '75%% as in the ResNet papers; cosine, down to 0 (default: cosine)')
    parser.add_argument('--warmup-epochs', type=non_negative_int, default=0,
                        help='epochs of linear warmup from lr/steps to lr (default: 0)')
    parser.add_argument('--wd', type=non_negative_float, default=5e-4,
                        help='weight decay (default: 5e-4)')
    parser.add_argument('--momentum', type=fraction, default=0.9,
                        help='SGD momentum (default: 0.9)')
    parser.add_argument('--label-smoothing', type=fraction, default=0.0,
                        help='train on (1-e)*one_hot + e/classes (default: 0, off)')
    parser.add_argument('--ctx', metavar='DEVICES',
                        help='cpu, gpu, gpu:0,1 (data parallel) or cpu:0,1 '
                             '(default: a GPU if MXNet sees one, else cpu)')
    parser.add_argument('--kvstore', choices=KVSTORES,
                        help='how gradients are summed: device or local, over the devices of '
                             'this process (default: device, as gluon.Trainer); dist_sync, '
                             'dist_device_sync or dist_async, over the workers of a job started '
                             f'by {LAUNCH_PROG}')
    parser.add_argument('--hybridize', action=argparse.BooleanOptionalAction, default=True,
                        help='compile the net to a static graph: faster, same results '
                             '(default: on)')
    parser.add_argument('--seed', type=non_negative_int, default=0,
                        help='seeds the initialization, data order and augmentation (default: 0)')
    parser.add_argument('--amp', action='store_true',
                        help='float16 mixed precision with mxnet.contrib.amp (GPUs only)')
    parser.add_argument('--out', metavar='DIR',
                        help='run directory (default: runs/<model>-<data>-<YYYYmmdd-HHMMSS>)')
    parser.add_argument('--resume', metavar='RUN_DIR',
                        help='continue the run in RUN_DIR with its settings (only --ctx and '
                             '--data-dir may be given too)')
    return parser


def describe_recipe(name):
    """The flags of recipe ``name`` as a command line: ``--model ... --lr 0.2``."""
    return ' '.join(f'--{flag.replace("_", "-")} {value}'
                    for flag, value in RECIPES[name].items())


def given_flags(parser, argv):
    """``{name: value}`` of the flags on the command line ``argv``, defaults left out."""
    # argparse fills in a default only where the namespace lacks the attribute.
    unset = object()
    names = vars(parser.parse_args(argv))
    given = parser.parse_args(argv, argparse.Namespace(**dict.fromkeys(names, unset)))
    return {name: value for name, value in vars(given).items() if value is not unset}


def available_bytes():
    """Memory the system can give this process without swapping (Linux; else None)."""
    try:
        with open('/proc/meminfo') as file:
            fields = dict(line.split(':', 1) for line in file)
        return int(fields['MemAvailable'].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_memory(net, shape):
    """Raise ``ValueError`` if training ``net`` on batches of ``shape`` cannot
    fit in the memory available (the system would kill the run instead)."""
    needed, available = training_bytes(net, shape), available_bytes()
    if available is not None and needed > available:
        raise ValueError(f'training on batches of shape {shape} needs at least '
                         f'{needed / 1e9:.1f} GB, this machine has {available / 1e9:.1f} GB '
                         'available: use a smaller --batch-size or --image-size')


def check_recorded(parser, recorded, source, where=None):
    """Raise ``ValueError`` unless every recorded argument is a value its flag
    could have produced (as strict as the command line: a hand-edited
    ``"epochs": "3"`` is refused).  ``where`` names the record of a flag's
    value when it is not the flag's name (``settings.num_epochs``)."""
    where = where or {}
    for action in parser._actions:
        name = action.dest
        if name not in recorded or name in ('help', 'resume', 'out'):
            continue
        value, flag = recorded[name], '--' + name.replace('_', '-')
        if value is None and action.default is None:
            continue
        if isinstance(action.default, bool):
            ok = isinstance(value, bool)
        else:
            parse = action.type or str
            try:
                ok = isinstance(value, (str, int, float)) and not isinstance(value, bool) \
                    and parse(str(value)) == value and type(parse(str(value))) is type(value)
            except (argparse.ArgumentTypeError, ValueError):
                ok = False
            ok = ok and (action.choices is None or value in action.choices)
        if not ok:
            raise ValueError(f'{source}: {where.get(name, name)} is {value!r}, which {flag} '
                             'cannot be: edit it back to a valid value')


def recorded_flags(run_dir):
    """The flags of the run in ``run_dir`` as config.json records them: ``args``,
    and fit's settings under their flags' names; and, for each of those, where
    it was read (``settings.num_epochs``)."""
    run = RunDir(run_dir)
    recorded = dict(read_config(run_dir)['args'])
    where = {}
    if not set(SETTING_OF_FLAG) <= set(recorded):  # not an older run directory
        settings = run.settings()
        for flag, name in SETTING_OF_FLAG.items():
            if name in settings:
                recorded.setdefault(flag, settings[name])
                where[flag] = f'settings.{name}'
    return recorded, where


def resumed_args(parser, args, given):
    """The arguments of the run in ``args.resume``, from its config.json.

    The flags ``given`` with ``--resume`` must agree with the run's (``--model X``
    for a run of another model is an error), except ``--ctx`` and
    ``--data-dir``: a run may continue on other devices, or another machine.
    """
    run_dir = args.resume
    if os.path.isfile(run_dir):
        raise ValueError(f'--resume {run_dir} is a file: expected the run directory that '
                         'holds it')
    recorded, where = recorded_flags(run_dir)
    missing = sorted(set(vars(args)) - set(recorded) - set(ADDED))
    if missing:
        raise ValueError(f'{run_dir}/config.json lacks {", ".join(missing)}: only runs of '
                         f'{PROG} can be resumed by it')
    unknown = sorted(set(recorded) - set(vars(args)))  # every flag's name, out and resume too
    if unknown:  # a misspelt setting would be ignored: the run would not be the one meant
        raise ValueError(f'{run_dir}/config.json has unknown setting{"s" * (len(unknown) > 1)} '
                         f'{", ".join(unknown)}: expected only the flags of {PROG}; remove '
                         f'{"them" if len(unknown) > 1 else "it"}')
    check_recorded(parser, recorded, f'{run_dir}/config.json', where)
    for name, value in given.items():
        if name not in ('resume', 'out', *MOVABLE) and recorded.get(name) != value:
            flag = '--' + name.replace('_', '-')
            raise ValueError(f'{run_dir} is a run of {flag} {recorded.get(name)}, not {value}: '
                             f'drop {flag} to resume it with its own settings')
    if given.get('out', run_dir) != run_dir:
        raise ValueError(f'--resume continues in {run_dir}, not in --out {given["out"]}')
    movable = {name: given[name] for name in MOVABLE if name in given}
    return argparse.Namespace(**{**recorded, **movable, 'resume': run_dir, 'out': run_dir})


def parse_args(argv=None):
    """The run's arguments: the command line's, or those of the run it resumes."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.recipe and not args.resume:
        parser.set_defaults(**RECIPES[args.recipe])
        args = parser.parse_args(argv)
    if args.resume:
        args = resumed_args(parser, args, given_flags(parser, argv))
        for name, default in ADDED.items():
            vars(args).setdefault(name, default)
    return args


def check_args(args):
    """Check what can be checked before any work; returns the devices."""
    kvstore = args.kvstore or 'device'
    if is_distributed(kvstore):
        check_environment(kvstore)  # started by a launcher?
        if not args.out:
            raise ValueError(f'--kvstore {kvstore}: give --out DIR, the same on every worker '
                             f'({LAUNCH_PROG} chooses one when you do not)')
    # Every flag's own value was checked by its argparse type (check_recorded for a resumed
    # run); what no single flag can check is left:
    if args.warmup_epochs >= args.epochs:
        raise ValueError(f'--warmup-epochs {args.warmup_epochs} must be less than --epochs '
                         f'{args.epochs}')
    ctx = get_ctx(args.ctx)
    check_amp(args.amp, ctx)
    if len(ctx) > args.batch_size:
        raise ValueError(f'--batch-size {args.batch_size} cannot be split over the '
                         f'{len(ctx)} devices of --ctx: expected at least one image per device')
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise ValueError(f'--data-dir {args.data_dir}: no such folder (create it first, or '
                         'leave --data-dir out for ~/.gluon_resnet/datasets)')
    return ctx


def default_out(args):
    """Where a run goes without ``--out``: ``runs/<model>-<data>-<YYYYmmdd-HHMMSS>``."""
    return os.path.join('runs', f'{args.model}-{args.data}-{time.strftime("%Y%m%d-%H%M%S")}')


def resume_command(out, num_workers=None, num_servers=1):
    """The command that resumes the run in ``out``: this tool's, or for a job of
    ``num_workers`` workers and ``num_servers`` servers the launcher's."""
    if num_workers is None:
        return f'{PROG} --resume {shlex.quote(out)}'
    return (f'{LAUNCH_PROG} --workers {num_workers} --servers {num_servers} -- '
            f'--resume {shlex.quote(out)}')


def run_directory(args):
    """The run's ``RunDir``, checked: new runs must not overwrite another."""
    out = args.out or default_out(args)
    recorded = {name: value for name, value in {**vars(args), 'out': out}.items()
                if name not in SETTING_OF_FLAG and (name not in ADDED or value != ADDED[name])}
    run_dir = RunDir(out, args=recorded)  # data: once loaded
    if not args.resume:
        run_dir.check_new()
    return run_dir


def main(argv=None):
    args = parse_args(argv)
    ctx = check_args(args)
    run_dir = run_directory(args)
    out = run_dir.path
    epochs_done = run_dir.epochs_done() if args.resume else 0
    if epochs_done >= args.epochs:
        print(f'{out} is complete: {epochs_done} of {args.epochs} epochs trained; nothing to do')
        return
    kvstore = args.kvstore or 'device'
    kv = connect(kvstore)  # a distributed one waits here for the whole job
    rank, num_workers = (kv.rank, kv.num_workers) if is_distributed(kvstore) else (0, 1)

    train_iter, test_iter, info = load_data(args.data, args.batch_size, args.image_size,
                                            args.data_dir, seed=args.seed)
    net = get_model(args.model, num_classes=info.num_classes)
    check_input(net, (args.batch_size, *info.image_shape))  # e.g. too small for the model
    check_memory(net, (args.batch_size, *info.image_shape))
    # The other workers leave the run directory to worker 0: it alone writes, so it alone locks.
    with run_dir.locked() if rank == 0 else contextlib.nullcontext():
        if not args.resume:
            run_dir.data = info  # fit writes config.json (worker 0)
        elif run_dir.has_checkpoint():
            run_dir.check_checkpoint()  # checksums now, not in fit: a corrupted one is one line
        announce_threads()  # every check passed: an error is one line, without the notice
        print(f'training {args.model} on {args.data} {info.image_shape}, {info.num_train} '
              f'training and {info.num_test} test images, on {ctx}; run directory {out}')
        resume_with = (resume_command(out, num_workers, os.environ['DMLC_NUM_SERVER'])
                       if is_distributed(kvstore) else resume_command(out))
        for signum in (signal.SIGINT, signal.SIGTERM):  # the second one, once fit has the first
            signal.signal(signum, abort_handler(f'{PROG}: aborted; resume with: {resume_with}'))

        try:
            fit(net, train_iter, test_iter, args.epochs, args.lr, ctx, schedule=args.schedule,
                warmup_epochs=args.warmup_epochs, wd=args.wd, momentum=args.momentum,
                label_smoothing=args.label_smoothing, hybridize=args.hybridize, seed=args.seed,
                amp=args.amp, out=run_dir, resume=bool(args.resume), kvstore=kv)
        except NonFiniteLoss as error:
            print(f'{PROG}: error: {error}', file=sys.stderr)
            sys.exit(EXIT_DIVERGED)
        except Interrupted as error:
            hint = f"\nresume with: {resume_with}" if rank == 0 else ''
            print(f'{PROG}: {error}{hint}', file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        if rank == 0:
            print(f'wrote {out} ({run_dir.size_mb():.0f} MB): {", ".join(run_dir.files())}')


if __name__ == '__main__':
    run(main, PROG)
