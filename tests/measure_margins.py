"""Measure the outcomes of the training runs that tests assert, over the
variations a test must survive on another machine.

    python tests/measure_margins.py [--seeds 0 1 2 3 4] [--modes hybridized imperative]
                                    [--runs digits fashion-mnist d2l-loader]

Each variation of the environment runs in its own process (MXNet reads it at
start): oneDNN on and off (``MXNET_MKLDNN_ENABLED=0``: other kernels, as on
another CPU) times 2 and 1 OpenMP threads; inside, each seed, hybridized and
imperative.  A full run takes about an hour on 2 cores.  Prints one row per run and the worst final test accuracy
and loss ratio per run name.  See ``learning.py``.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ENVIRONMENTS = [dict(MXNET_MKLDNN_ENABLED=mkldnn, OMP_NUM_THREADS=threads)
                for mkldnn, threads in itertools.product(('1', '0'), ('2', '1'))]


def measure(names, seeds, modes):
    """In this process: one JSON line per (name, seed, hybridize) on stdout."""
    sys.path.insert(0, HERE)
    import contextlib
    from learning import RUNS
    for name, seed, mode in itertools.product(names, seeds, modes):
        hybridize = mode == 'hybridized'
        with contextlib.redirect_stdout(sys.stderr):  # fit's epoch lines
            history = RUNS[name](seed, hybridize)
        print(json.dumps(dict(name=name, seed=seed, hybridize=hybridize,
                              test_acc=history['test_acc'][-1], train_acc=history['train_acc'][-1],
                              loss_ratio=history['loss'][-1] / history['loss'][0],
                              first_loss=history['loss'][0])), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--modes', nargs='+', choices=('hybridized', 'imperative'),
                        default=['hybridized', 'imperative'])
    parser.add_argument('--runs', nargs='+', default=['digits', 'fashion-mnist', 'd2l-loader'])
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return measure(args.runs, args.seeds, args.modes)
    rows = []
    for env in ENVIRONMENTS:
        result = subprocess.run([sys.executable, __file__, '--child', '--runs', *args.runs,
                                 '--seeds', *map(str, args.seeds), '--modes', *args.modes], env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                check=True)
        for line in result.stdout.splitlines():
            row = {**json.loads(line), **env}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for name in args.runs:
        mine = [row for row in rows if row['name'] == name]
        worst = min(mine, key=lambda row: row['test_acc'])
        print(f"{name}: worst test acc {worst['test_acc']:.3f} (seed {worst['seed']}, "
              f"hybridize {worst['hybridize']}, oneDNN {worst['MXNET_MKLDNN_ENABLED']}, "
              f"{worst['OMP_NUM_THREADS']} threads); worst train acc "
              f"{min(r['train_acc'] for r in mine):.3f}; worst last/first loss "
              f"{max(r['loss_ratio'] for r in mine):.3f}; highest first loss "
              f"{max(r['first_loss'] for r in mine):.3f}; {len(mine)} runs")


if __name__ == '__main__':
    main()
