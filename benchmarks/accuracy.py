"""``--time-to-accuracy``: the wall time a training recipe takes to reach a
test accuracy, from the start of its process, against d2l's recipe.

``train_and_time(command, out_dir)`` runs ``python -m gluon_resnet.train
... --out out_dir`` and notes, for every epoch, the seconds from the start of
the process to the moment its epoch line (``epoch 3/8  loss ...``, printed
once the epoch's test accuracy is known) appears on stdout: data loading,
start-up and every earlier evaluation and checkpoint included.  The accuracy
of each epoch is read afterwards from the run's ``metrics.jsonl``.

d2l's recipe (``d2l.train_ch6`` on its ResNet-18, Fashion-MNIST at 96x96,
10 epochs, lr 0.05) is not run: ``project_d2l`` projects its time from the
speeds ``train_ch6`` reaches in the same benchmark run at 96x96, batch 128:
10 epochs x (60,000 training images / training images/s + 10,000 test
images / test-pass images/s).  That leaves out loading and resizing the data
and the process start, so it is a lower bound.
"""
import json
import os
import re
import subprocess
import sys
import time

from .measure import FASHION_MNIST_TEST, FASHION_MNIST_TRAIN

__all__ = ['THRESHOLDS', 'D2L_EPOCHS', 'D2L_SPEEDUP_GOAL', 'EPOCH_LINE', 'train_and_time', 'read_metrics',
           'first_reached', 'project_d2l', 'summarize']

THRESHOLDS = (0.924, 0.930)  # test accuracies whose first time is reported
D2L_EPOCHS = 10  # d2l's ResNet section trains Fashion-MNIST at 96x96 for 10 epochs
D2L_SPEEDUP_GOAL = 40  # reach 92.4% in at most 1/40 of d2l's recipe's time (issue 11)
EPOCH_LINE = re.compile(r'epoch (\d+)/(\d+)\s')  # progress.epoch_line


def train_and_time(command, env, echo=sys.stderr):
    """Run ``command``; return ``(elapsed, total_s, returncode)``: ``elapsed``
    maps each epoch (from 1) to the seconds from the start of the process to
    its epoch line.  The child's stdout is echoed to ``echo``; its stderr is
    ours."""
    start = time.perf_counter()
    elapsed = {}
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True,
                          bufsize=1) as process:
        for line in process.stdout:
            match = EPOCH_LINE.match(line)
            if match:
                elapsed[int(match.group(1))] = time.perf_counter() - start
            print(line, end='', file=echo, flush=True)
    return elapsed, time.perf_counter() - start, process.returncode


def read_metrics(run_dir):
    """The rows of ``run_dir/metrics.jsonl``, one dict per epoch."""
    with open(os.path.join(run_dir, 'metrics.jsonl')) as file:
        return [json.loads(line) for line in file if line.strip()]


def first_reached(epochs, threshold):
    """Seconds at the first epoch (dicts with ``test_acc`` and ``elapsed_s``)
    whose test accuracy is at least ``threshold``; ``None`` if none is."""
    return next((e['elapsed_s'] for e in epochs if e['test_acc'] >= threshold), None)


def project_d2l(train_img_per_s, eval_img_per_s, num_epochs=D2L_EPOCHS):
    """Seconds d2l's recipe would take at these speeds: every epoch trains on
    the 60,000 training images and then tests on the 10,000 test images."""
    return num_epochs * (FASHION_MNIST_TRAIN / train_img_per_s
                         + FASHION_MNIST_TEST / eval_img_per_s)


def summarize(metrics, elapsed, total_s):
    """The epochs (epoch, elapsed_s, test_acc), the first time each threshold
    was reached and the final accuracy, as a dict."""
    missing = [row['epoch'] for row in metrics if row['epoch'] not in elapsed]
    if missing:
        raise ValueError(f'no epoch line on stdout for epochs {missing} of metrics.jsonl: '
                         f'expected lines as "epoch 1/8  loss ..."')
    epochs = [dict(epoch=row['epoch'], elapsed_s=elapsed[row['epoch']],
                   test_acc=row['test_acc']) for row in metrics]
    return dict(epochs=epochs, total_s=total_s,
                final_test_acc=epochs[-1]['test_acc'] if epochs else None,
                reached={f'{t:.3f}': first_reached(epochs, t) for t in THRESHOLDS})
