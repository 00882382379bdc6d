"""Training throughput with one OpenMP thread (MXNet's choice on 2 cores) and
with the threads gluon_resnet chooses (every usable core).

    python benchmarks/threads.py
    python benchmarks/threads.py --model resnet18 --image-size 32 --batch-size 64

Each setting runs in its own process, since MXNet reads ``OMP_NUM_THREADS``
when it starts. A run trains ``--model`` with ``fit`` on synthetic images for
two epochs: the first is the burn-in, the second is timed (``fit`` times the
training steps only, each ending when its loss is read back).
"""
import argparse
import json
import os
import platform
import subprocess
import sys


def measure(model, image_size, batch_size, steps):
    """Images/s of the second epoch of ``fit`` in this process."""
    import gluon_resnet
    from gluon_resnet import fit, get_model, load_data
    train_iter, test_iter, _ = load_data(
        'synthetic', batch_size, num_train=batch_size * steps, num_test=batch_size,
        image_shape=(3, image_size, image_size))
    history = fit(get_model(model, num_classes=10), train_iter, test_iter, num_epochs=2,
                  lr=0.05, ctx=gluon_resnet.get_ctx('cpu'))
    return history['img_per_s'][-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='cifar_resnet20_v1', help='a registry name')
    parser.add_argument('--image-size', type=int, default=28, help='side of the images')
    parser.add_argument('--batch-size', type=int, default=128, help='images per step')
    parser.add_argument('--steps', type=int, default=20, help='steps per epoch')
    parser.add_argument('--measure', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = (args.model, args.image_size, args.batch_size, args.steps)
    if args.measure:  # the child process
        print(json.dumps(measure(*settings)))
        return
    print(f'{args.model}, {args.image_size}x{args.image_size}, batch {args.batch_size}, '
          f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores')
    results = {}
    for label, threads in (('1 thread (MXNet default here)', '1'),
                           ('gluon_resnet default', None)):
        env = dict(os.environ)
        env.pop('OMP_NUM_THREADS', None)
        if threads:
            env['OMP_NUM_THREADS'] = threads
        out = subprocess.run([sys.executable, __file__, '--measure', '--model', args.model,
                              '--image-size', str(args.image_size), '--batch-size',
                              str(args.batch_size), '--steps', str(args.steps)],
                             env=env, capture_output=True, text=True, check=True)
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f'{label:32} {results[label]:7.0f} img/s')
    base, ours = results.values()
    print(f'ratio {ours / base:.2f}')


if __name__ == '__main__':
    main()
