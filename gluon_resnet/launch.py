"""Start a distributed training job on this machine: a scheduler, servers and workers.

Examples::

    python -m gluon_resnet.launch --workers 2 -- --kvstore dist_sync \\
        --model cifar_resnet20_v1 --image-size 16 --epochs 4 --out runs/two
    python -m gluon_resnet.launch --workers 2 -- --resume runs/two    # after Ctrl-C

Everything after ``--`` goes to ``python -m gluon_resnet.train``, which every
worker runs; it needs a distributed ``--kvstore`` and is checked before
anything starts (one line, exit code 2), as are the ``--resume`` of a run
made by another number of workers and a ``--port`` in use.  Without
``--out`` the launcher chooses the run directory, so that every worker
names the same one.  The processes talk over loopback (``127.0.0.1``, the
scheduler on a free port or ``--port``), get their role and peers from the
``DMLC_*`` environment (see ``gluon_resnet.distributed``), and share the
cores: without ``OMP_NUM_THREADS`` each worker gets ``cores / workers``
threads, servers and the scheduler one.

Their output is streamed with a ``[scheduler]``, ``[server 0]``, ``[worker
0]`` prefix.  A worker's rank is given by the scheduler when the job forms,
not by start order: a worker's lines wait until it has printed its rank.

Watchdog: when a process of the job dies (killed, crashed, out of memory) the
others would wait for it for ever; the launcher stops them all (SIGTERM, then
SIGKILL after 3 s, to each process group) and exits with the dead one's exit
code (128 + N for signal N) and a line naming it.  Ctrl-C (or SIGTERM): the
workers get the signal, stop together after a step and worker 0 saves
(``dist_async``: at the end of the epoch); then the servers and the
scheduler are stopped and the command that resumes is printed; exit code
130.  A second Ctrl-C, or workers that have not stopped within
``STOP_SECONDS``, and everything is killed at once.  Each process runs in a
session of its own so that it and its children can be stopped together; so
a launcher killed with SIGKILL leaves its job behind: kill the PIDs it
printed first.

Why not MXNet's own ``tools/launch.py --launcher local``: with MXNet 1.9.1 on
Python 3.9 or newer it fails at once (its ``dmlc_tracker/tracker.py`` calls
``Thread.isAlive``, removed in Python 3.9: AttributeError), and even where it
runs, its local launcher runs every process through a shell from a daemon
thread, prints their output unprefixed, retries or abandons a failed worker
while the others wait for it for ever, and leaves the processes running when
it is stopped.  For several machines use its ssh launcher (see README.md,
"Distributed training").
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from ._cli import EXIT_INTERRUPTED, ArgumentParser, int_type, positive_int, run
from ._signals import CatchSignals
from ._threads import THREADS_CHOSEN, usable_cores
from . import train
from .checkpoint import RunDir
from .distributed import is_distributed

__all__ = ['run_job', 'free_port', 'check_port', 'check_train_arguments', 'main', 'PROG']

PROG = 'python -m gluon_resnet.launch'
HOST = '127.0.0.1'
STOP_SECONDS = 60  # after Ctrl-C, for the workers to finish their step and save
KILL_SECONDS = 3  # between SIGTERM and SIGKILL
GRACE_SECONDS = 15  # for the workers to end once a server or the scheduler has ended
_RANK = re.compile(r'worker (\d+) of \d+')  # distributed.RANK_LINE


# Helpers

def free_port():
    """A TCP port nobody listens on now (the system's choice)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def check_port(port):
    """``port`` if a scheduler can listen on it (all interfaces), else ``ValueError``."""
    with socket.socket() as sock:
        try:
            sock.bind(('', port))
        except OSError as error:
            raise ValueError(f'--port {port} is in use ({error.strerror}): choose another, or '
                             'leave --port out for a free one') from None
    return port


def check_train_arguments(train_argv, num_workers):
    """The train arguments the workers run, and their run directory: checked as
    ``train`` checks them, with a distributed kvstore, and with ``--out`` added
    when missing (the workers must agree on it).  ``ValueError`` if they cannot
    work; argparse errors exit with code 2."""
    args = train.parse_args(train_argv)  # --recipe and --resume applied as train applies them
    kvstore = args.kvstore or 'device'
    if args.resume and not is_distributed(kvstore):
        raise ValueError(f'{args.resume} is a run of one process (--kvstore {kvstore}): resume '
                         f'it with {train.PROG} --resume {args.resume}')
    if not is_distributed(kvstore):
        raise ValueError(f'the workers need a distributed kvstore, got --kvstore {kvstore}: '
                         'add --kvstore dist_sync (or dist_device_sync, dist_async) after --')
    if args.batch_size % num_workers:
        raise ValueError(f'--batch-size {args.batch_size} cannot be split evenly over '
                         f'--workers {num_workers}: use a multiple of {num_workers}')
    if args.resume:
        trained_by = RunDir(args.resume).settings().get('num_workers', 1)
        if trained_by != num_workers:
            raise ValueError(f'{args.resume} was trained by {trained_by} worker(s), not '
                             f'--workers {num_workers}: resume it with --workers {trained_by}')
        return train_argv, args.resume
    if args.out:
        return train_argv, args.out
    out = train.default_out(args)
    return [*train_argv, '--out', out], out


# A server or the scheduler.  ``import mxnet`` runs one from inside its own import, before
# mxnet.gluon can be imported, so a dist_async server could not unpickle the optimizer the
# workers send it (``distributed._ServerSGD``): import everything as a worker, then serve.
_SERVE = '; '.join([
    'import os', "role = os.environ['DMLC_ROLE']", "os.environ['DMLC_ROLE'] = 'worker'",
    'import gluon_resnet.distributed', "os.environ['DMLC_ROLE'] = role",
    'from mxnet.kvstore.kvstore_server import _init_kvstore_server_module',
    '_init_kvstore_server_module()'])


def _describe_exit(code):
    if code < 0:
        return f'was killed by {signal.Signals(-code).name}'
    return f'exited with status {code}'


# The job

class _Node:
    """One process of the job: its role, label, Popen, and two threads that copy
    its stdout and stderr to ours, a prefix on every line."""

    def __init__(self, role, index, command, env, lock):
        self.role, self.index, self.lock = role, index, lock
        self.label = {'scheduler': 'scheduler', 'server': f'server {index}'}.get(role, 'worker ?')
        self.ranked = role != 'worker'  # a worker's lines wait for its rank
        self.held = []  # (stream, line) printed before the rank
        self.process = subprocess.Popen(
            command, env={**env, 'DMLC_ROLE': role}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, errors='replace')
        self.pid = self.process.pid
        self.threads = [threading.Thread(target=self._copy, args=(pipe, stream), daemon=True)
                        for pipe, stream in ((self.process.stdout, sys.stdout),
                                             (self.process.stderr, sys.stderr))]
        for thread in self.threads:
            thread.start()

    def _copy(self, pipe, stream):
        for line in pipe:
            with self.lock:
                match = None if self.ranked else _RANK.match(line)
                if match:
                    self.label, self.ranked = f'worker {match[1]}', True
                    self._flush_held()
                if self.ranked:
                    _write(stream, f'[{self.label}] {line}')
                else:
                    self.held.append((stream, line))

    def _flush_held(self):
        for stream, line in self.held:
            _write(stream, f'[{self.label}] {line}')
        self.held = []

    def signal(self, signum):
        """Send ``signum`` to the process group (the process and any child of it)."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self):
        """After the process ended: the rest of its output, the held lines too."""
        for thread in self.threads:
            thread.join(timeout=5)
        with self.lock:
            if not self.ranked:
                self.label = 'worker ?'
                self._flush_held()


def _write(stream, text):
    try:
        stream.write(text if text.endswith('\n') else text + '\n')
        stream.flush()
    except (BrokenPipeError, ValueError):
        pass


def _environment(num_workers, num_servers, port, env):
    """The environment of every process of the job (``DMLC_ROLE`` apart)."""
    env = dict(os.environ if env is None else env)
    env.update(DMLC_PS_ROOT_URI=HOST, DMLC_PS_ROOT_PORT=str(port), DMLC_NODE_HOST=HOST,
               DMLC_NUM_SERVER=str(num_servers), DMLC_NUM_WORKER=str(num_workers),
               PYTHONUNBUFFERED='1')
    return env


def _start(command, num_workers, num_servers, port, env):
    """Start the scheduler, the servers (``_SERVE``), then the workers."""
    env = _environment(num_workers, num_servers, port, env)
    quiet = {**env, 'OMP_NUM_THREADS': '1'}  # a server sums arrays: one thread is plenty
    if THREADS_CHOSEN:  # nobody chose: the workers share the cores
        env['OMP_NUM_THREADS'] = str(max(1, usable_cores() // num_workers))
    lock = threading.Lock()
    server = [sys.executable, '-c', _SERVE]
    nodes = [_Node('scheduler', 0, server, quiet, lock)]
    nodes += [_Node('server', i, server, quiet, lock) for i in range(num_servers)]
    nodes += [_Node('worker', i, command, env, lock) for i in range(num_workers)]
    return nodes


def _stop(nodes):
    """SIGTERM to every process still running, SIGKILL after ``KILL_SECONDS``; all reaped."""
    running = [node for node in nodes if node.process.poll() is None]
    for node in running:
        node.signal(signal.SIGTERM)
    deadline = time.monotonic() + KILL_SECONDS
    while time.monotonic() < deadline and any(n.process.poll() is None for n in running):
        time.sleep(0.05)
    for node in nodes:
        node.signal(signal.SIGKILL)  # also what a process may have left in its group
        node.process.wait()
    return running


def _watch(nodes, signals, timeout):
    """Wait for the job; ``(exit code, message or None)``."""
    workers = [node for node in nodes if node.role == 'worker']
    started, interrupted_at, ended_at = time.monotonic(), None, None
    while True:
        if signals.received and interrupted_at is None:
            interrupted_at = time.monotonic()
            for node in workers:
                node.signal(signals.received[0])
        if len(signals.received) > 1:
            return EXIT_INTERRUPTED, 'interrupted twice: stopped every process at once'
        codes = {node: node.process.poll() for node in nodes}
        expected = (0, EXIT_INTERRUPTED) if interrupted_at else (0,)
        for node, code in codes.items():
            if code is not None and code not in expected:
                return (128 - code if code < 0 else code,
                        f'{node.label} (pid {node.pid}) {_describe_exit(code)}')
        now = time.monotonic()
        if all(codes[node] is not None for node in workers):
            if interrupted_at:
                return EXIT_INTERRUPTED, None
            if all(code is not None for code in codes.values()):
                return 0, None
            ended_at = ended_at or now  # the servers and the scheduler end with the workers
            if now - ended_at > KILL_SECONDS:
                return 0, None
        elif any(codes[node] is not None for node in nodes if node.role != 'worker'):
            ended_at = ended_at or now
            if now - ended_at > GRACE_SECONDS:
                return 1, 'a server or the scheduler ended while workers still run'
        if interrupted_at and now - interrupted_at > STOP_SECONDS:
            return EXIT_INTERRUPTED, (f'the workers did not stop within {STOP_SECONDS} s of the '
                                      'signal: stopped every process')
        if timeout is not None and now - started > timeout:
            return 124, f'the job did not end within {timeout} s: stopped every process'
        time.sleep(0.1)


def run_job(command, num_workers, num_servers=1, port=None, env=None, timeout=None,
            resume_command=None):
    """Run ``command`` in ``num_workers`` worker processes of a job with
    ``num_servers`` servers and a scheduler on ``port`` (default: a free one),
    all on loopback, under the watchdog of the module docstring; return the
    exit code.  Every process is ended and reaped before this returns.
    ``resume_command`` is printed after an interruption."""
    port = port or free_port()
    nodes = []
    with CatchSignals() as signals:  # counted, not fatal
        try:
            nodes = _start(command, num_workers, num_servers, port, env)
            pids = ', '.join(f'{node.label} {node.pid}' for node in nodes if node.ranked)
            workers = ' '.join(str(node.pid) for node in nodes if not node.ranked)
            print(f'{PROG}: scheduler on {HOST}:{port}; pids: {pids}, workers {workers}',
                  file=sys.stderr, flush=True)
            code, message = _watch(nodes, signals, timeout)
        finally:
            stopped = _stop(nodes)
            for node in nodes:
                node.close()
    if message:
        others = f'; stopped the other {len(stopped)} process(es)' if stopped else ''
        print(f'{PROG}: error: {message}{others}', file=sys.stderr, flush=True)
    if code == EXIT_INTERRUPTED and resume_command:
        print(f'{PROG}: interrupted; resume with: {resume_command}', file=sys.stderr, flush=True)
    return code


# Command line

def make_parser():
    parser = ArgumentParser(prog=f'{PROG} [options] -- [train arguments]', description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--workers', type=positive_int, required=True,
                        help='worker processes, each training on its share of every batch')
    parser.add_argument('--servers', type=positive_int, default=1,
                        help='server processes, which sum the gradients (default: 1)')
    parser.add_argument('--port', type=int_type(minimum=1, maximum=65535),
                        help="the scheduler's port (default: a free one)")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index('--') if '--' in argv else len(argv)
    args = make_parser().parse_args(argv[:split])
    train_argv, out = check_train_arguments(argv[split + 1:], args.workers)
    port = check_port(args.port) if args.port else free_port()
    command = [sys.executable, '-m', 'gluon_resnet.train', *train_argv]
    sys.exit(run_job(command, args.workers, args.servers, port,
                     resume_command=train.resume_command(out, args.workers, args.servers)))


if __name__ == '__main__':
    run(main, PROG)
