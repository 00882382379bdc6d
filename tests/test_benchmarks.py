"""The benchmark's output, never its speed: ``python -m benchmarks.run --quick``
on its smallest setting writes the table and the JSON it promises, with
PyTorch installed or not; the PyTorch twins are our nets; the
time-to-accuracy helpers read the training CLI's output."""
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks import accuracy, measure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_INSTALLED = importlib.util.find_spec('torch') is not None
HEADER = ['setting', 'variant', 'kind', 'img/s', 'vs best PyTorch', 'vs d2l', 'GFLOP/s',
          '% of peak', 'peak RSS MB', 'note']
RATIOS = ('vs best PyTorch', 'vs d2l')
ROW_KEYS = {'setting', 'model', 'image_size', 'batch_size', 'variant', 'kind', 'framework',
            'what', 'params', 'macs_per_image', 'img_per_s', 'max_rss_mb', 'note', 'details',
            'vs_pytorch', 'vs_d2l', 'gflops', 'peak_fraction'}
# Every variant that needs neither PyTorch nor d2l's ResNet-18 measures something.
ALWAYS_MEASURED = ('mxnet-bare', 'fit', 'mxnet-infer', 'mxnet-onednn', 'loader')


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    """stdout and JSON of the quick run on cifar_resnet20_v1 at 28x28, 2 timed steps."""
    out = tmp_path_factory.mktemp('benchmark') / 'results.json'
    result = subprocess.run([sys.executable, '-m', 'benchmarks.run', '--quick', '--steps', '2',
                             '--settings', 'resnet20-28', '--out', str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out) as file:
        return result.stdout, json.load(file)


def table_rows(stdout):
    """The header and the rows of the markdown table in ``stdout``, as lists of cells."""
    lines = [line for line in stdout.splitlines() if line.startswith('|')]
    cells = [[cell.strip() for cell in line.strip('|').split('|')] for line in lines]
    assert cells[1][0].startswith('---'), lines[:2]
    return cells[0], cells[2:]


def test_the_table_has_one_row_per_variant_and_numeric_ratios(quick_run):
    stdout, results = quick_run
    header, rows = table_rows(stdout)
    assert header == HEADER
    variants = [v.name for v in measure.variants_for(results['device'])]
    assert [row[1] for row in rows] == variants
    assert {row[0] for row in rows} == {'resnet20-28'}
    for row in rows:
        for column in RATIOS:
            value = row[HEADER.index(column)]
            assert value == 'n/a' or math.isfinite(float(value)), (row, column)
    by_name = {row[1]: row for row in rows}
    for name in ALWAYS_MEASURED:
        assert float(by_name[name][3].replace(',', '')) > 0, by_name[name]
    assert 'not measured' in by_name['d2l-default'][-1]  # train_ch6 trains d2l's ResNet-18
    if TORCH_INSTALLED:
        assert 'skipped with --quick' in by_name['torch-compile'][-1]
    else:
        for name in ('torch-eager', 'torch-compile', 'torch-infer'):
            assert 'PyTorch not installed' in by_name[name][-1]
        assert {row[HEADER.index('vs best PyTorch')] for row in rows} == {'n/a'}


def test_the_table_says_where_it_ran(quick_run):
    stdout, results = quick_run
    assert '`python -m benchmarks.run --quick --steps 2 --settings resnet20-28 --out ' in stdout
    assert results['machine']['cpu'] in stdout
    if results['device'] == 'cpu':
        assert results['device_note'] in stdout
    assert 'Matrix-multiply peak' in stdout


def test_the_json_holds_the_command_machine_versions_and_rows(quick_run):
    _, results = quick_run
    assert results['command'].startswith('python -m benchmarks.run --quick')
    assert set(results['machine']) >= {'cpu', 'cores', 'threads'}
    assert results['machine']['threads'] >= 1
    assert set(results['versions']) >= {'python', 'mxnet', 'numpy', 'd2l', 'torch'}
    assert results['versions']['numpy'] == '1.23.5'
    assert results['device'] in ('cpu', 'gpu')
    assert results['peak']['gflops'] > 0
    assert len(results['rows']) == len(measure.variants_for(results['device']))
    for row in results['rows']:
        assert set(row) == ROW_KEYS, row['variant']
        for key in ('vs_pytorch', 'vs_d2l', 'gflops', 'peak_fraction', 'img_per_s'):
            assert row[key] is None or row[key] > 0, (row['variant'], key)
        if row['framework'] == 'torch' and row['img_per_s']:
            assert row['details']['params'] == row['params'] == 269_434


@pytest.mark.skipif(not TORCH_INSTALLED, reason='PyTorch is the optional extra [bench]')
@pytest.mark.parametrize('name', ['resnet18', 'cifar_resnet20_v1'])
def test_the_pytorch_twins_have_our_parameters(name):
    program = ('import sys; from benchmarks.torch_nets import torch_net, count_parameters; '
               'print(count_parameters(torch_net(sys.argv[1])))')
    # Its own process: this one has MXNet's OpenMP runtime loaded already.
    result = subprocess.run([sys.executable, '-c', program, name], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import gluon_resnet as gr
    net = gr.initialize(gr.get_model(name, num_classes=10))
    expected = gr.layer_report(net, (1, 1, 28, 28)).total_params
    assert int(result.stdout) == expected == {'resnet18': 11_178_378,
                                              'cifar_resnet20_v1': 269_434}[name]


def test_time_to_accuracy_reads_the_epoch_lines_of_the_training_cli():
    from gluon_resnet.progress import epoch_line
    record = dict(epoch=3, loss=0.25, train_acc=0.9, test_acc=0.925, img_per_s=470.0)
    match = accuracy.EPOCH_LINE.match(epoch_line(record, 8))
    assert match and match.groups() == ('3', '8')
    metrics = [dict(epoch=1, test_acc=0.91), dict(epoch=2, test_acc=0.926),
               dict(epoch=3, test_acc=0.931)]
    summary = accuracy.summarize(metrics, {1: 10.0, 2: 20.0, 3: 30.0}, 31.0)
    assert summary['reached'] == {'0.924': 20.0, '0.930': 30.0}
    assert summary['final_test_acc'] == 0.931
    assert accuracy.summarize(metrics[:1], {1: 10.0}, 11.0)['reached']['0.924'] is None
    with pytest.raises(ValueError, match='no epoch line'):
        accuracy.summarize(metrics, {1: 10.0}, 31.0)


def test_d2l_projection_is_ten_epochs_of_training_and_testing():
    # 10 x (60,000 / 100 + 10,000 / 500) seconds
    assert accuracy.project_d2l(100.0, 500.0) == pytest.approx(6200.0)


def test_time_to_accuracy_report_gives_the_fraction_of_d2l_time():
    from benchmarks.run import accuracy_report
    result = dict(command='python -m benchmarks.run --time-to-accuracy', date='2026-11-26',
                  machine=dict(cpu='test cpu', threads=2), device_note='no GPU',
                  train_command='python -m gluon_resnet.train --recipe fmnist-fast',
                  final_test_acc=0.931, total_s=310.0,
                  epochs=[dict(epoch=1, elapsed_s=100.0, test_acc=0.925),
                          dict(epoch=2, elapsed_s=300.0, test_acc=0.931)],
                  reached={'0.924': 100.0, '0.930': 300.0},
                  d2l={'d2l-threads': dict(img_per_s=100.0, eval_img_per_s=500.0,
                                           projected_s=6200.0),
                       'd2l-default': dict(error='exit code 1: no d2l')})
    report = accuracy_report(result)
    assert '| 2 | 300.0 | 0.9310 |' in report
    assert '92.4% in 1/62.0 of that time (goal: 1/40)' in report  # 6200 s / 100 s
    assert "d2l-default: not measured (exit code 1: no d2l)" in report
