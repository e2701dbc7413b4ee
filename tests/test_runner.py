"""The runner's guards: undeclared parameters refused, the kernel always this interpreter, the interpreter checked."""
import json, os, sys
from pathlib import Path
import nbformat
import pytest
from goodbad.core import RunError
from goodbad.nightly import execute_phase, check_parameters, notebooks_dir


def _notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('run_date: str = "2026-11-26"  # the night')
    params.metadata['tags'] = ['parameters']
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    nbformat.write(nb, path)
    return path


def test_an_undeclared_parameter_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / 'out.ipynb'
    with pytest.raises(RunError, match="10_acquire.ipynb does not declare the parameter secret_sauce"):
        execute_phase(notebooks_dir() / '10_acquire.ipynb', out, dict(run_date='2026-11-26', secret_sauce='1'), tmp_path)
    assert not out.exists()


def test_every_phase_declares_the_run_parameters():
    from goodbad.nightly import PHASES, RUN_PARAMETERS
    for p in PHASES: check_parameters(notebooks_dir() / f'{p}.ipynb', dict.fromkeys(RUN_PARAMETERS, ''))


def test_the_kernel_is_this_interpreter_whatever_the_kernelspecs_say(tmp_path, monkeypatch):
    fake = tmp_path / 'jupyter' / 'kernels' / 'python3'
    fake.mkdir(parents=True)
    (fake / 'kernel.json').write_text(json.dumps({'argv': ['/bin/false', '{connection_file}'], 'display_name': 'impostor', 'language': 'python'}))
    monkeypatch.setenv('JUPYTER_PATH', str(tmp_path / 'jupyter'))
    monkeypatch.setenv('JUPYTER_DATA_DIR', str(tmp_path / 'jupyter'))
    nb = _notebook(tmp_path / 'k.ipynb', "from goodbad.record import record\nfrom goodbad.core import interpreter\nrecord('kernel', interpreter())")
    entry = execute_phase(nb, tmp_path / 'k-out.ipynb', dict(run_date='2026-11-27'), tmp_path)
    assert entry['status'] == 'succeeded', entry['error']
    assert entry['records']['kernel']['executable'] == sys.executable


def test_a_kernel_leaves_nothing_in_the_temporary_directory(tmp_path, monkeypatch):
    import tempfile
    scratch = Path(tempfile.mkdtemp(prefix='gbk-'))  # short: a kernel's socket path must fit in 108 characters
    monkeypatch.setattr(tempfile, 'tempdir', str(scratch))  # where the kernel's socket folder is made
    nb = _notebook(tmp_path / 'k.ipynb', "from goodbad.record import record\nfrom goodbad.core import interpreter\nrecord('kernel', interpreter())")
    assert execute_phase(nb, tmp_path / 'k-out.ipynb', dict(run_date='2026-11-27'), tmp_path)['status'] == 'succeeded'
    left = list(scratch.glob('goodbad-kernel-*'))
    scratch.rmdir() if not left else None
    assert not left, 'the kernel removes its socket folder when it ends'


def test_a_notebook_that_ran_elsewhere_fails_the_phase(tmp_path):
    nb = _notebook(tmp_path / 'k.ipynb', "from goodbad.record import record\nrecord('kernel', {'executable': '/opt/other/python'})")
    entry = execute_phase(nb, tmp_path / 'k-out.ipynb', dict(run_date='2026-11-27'), tmp_path)
    assert entry['status'] == 'failed' and 'ran under /opt/other/python' in entry['error']


def test_a_failing_cell_is_reported_in_one_line_and_kept_in_the_notebook(tmp_path):
    nb = _notebook(tmp_path / 'f.ipynb', "raise ValueError('the feed is late')")
    entry = execute_phase(nb, tmp_path / 'f-out.ipynb', dict(run_date='2026-11-27'), tmp_path)
    assert entry['status'] == 'failed' and entry['error'] == 'ValueError: the feed is late'
    assert 'the feed is late' in (tmp_path / 'f-out.ipynb').read_text()


@pytest.mark.xdist_group("night")
def test_the_suite_keeps_each_group_on_one_worker(request):
    "pytest 9.2 silently broke pytest-xdist's loadgroup (pytest-xdist issue 1386): every worker then builds the shared nights"
    if getattr(request.config.option, 'loadgroup', False):
        assert request.node.nodeid.endswith('@night'), ("pytest-xdist's --dist loadgroup no longer groups tests with this pytest: "
                                                        "install the test extra as the README says, which pins a pytest that works")
