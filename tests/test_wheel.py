"""goodbad installs as a normal package: a wheel carries the phase notebooks, and a night runs from an empty folder."""
import json, os, shutil, subprocess, sys, sysconfig, zipfile
from pathlib import Path
from conftest import REPO, RUN_DATE


def sh(*args, cwd=None, env=None, check=True):
    res = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and res.returncode: raise AssertionError(f"{' '.join(map(str, args))} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def test_a_wheel_install_runs_a_night_from_an_empty_folder(tmp_path):
    # the wheel, built as a release would be (pip's isolated build), from a copy so the checkout gains no build/ folder
    src = tmp_path/'src'
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns('.venv', '.git', 'runs', 'data', 'state', 'models', 'build', '*.egg-info'))
    sh(sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '-w', tmp_path/'dist', src)
    wheel = next((tmp_path/'dist').glob('goodbad-*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert {f'goodbad/notebooks/{p}.ipynb' for p in ('10_acquire', '40_train', '90_score')} <= set(names)
    assert not [n for n in names if n.startswith(('nbs/', 'tests/', 'settings.ini'))]

    # a virtual environment of its own: goodbad from the wheel only; its dependencies seen through a .pth file
    # (the test's own environment's packages, so nothing is downloaded; JUPYTER_PATH finds their data files, such as
    # nbconvert's page templates), and no checkout anywhere on its path
    venv = tmp_path/'venv'
    sh(sys.executable, '-m', 'venv', venv)
    site = Path(sh(venv/'bin'/'python', '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site/'_deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    sh(venv/'bin'/'python', '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-index', wheel)
    exe = venv/'bin'/'goodbad'

    home = tmp_path/'empty'
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith('GOODBAD_') and k != 'PYTHONPATH'} | {
        'GOODBAD_DEMO_CUSTOMERS': '1500', 'JUPYTER_PATH': str(Path(sys.prefix)/'share'/'jupyter')}
    where = sh(venv/'bin'/'python', '-c', 'import goodbad; print(goodbad.__file__)', cwd=home, env=env).stdout
    assert where.startswith(str(site)), where
    assert sh(exe, '--version', cwd=home, env=env).stdout.startswith('goodbad ')
    sh(exe, 'init', cwd=home, env=env)
    assert sh(exe, 'init', cwd=home, env=env, check=False).returncode == 2  # never overwrites a policy

    # too few customers for a model at the shipped policy: the night ends with status 3, having run the phases up to train
    night = sh(exe, 'nightly', '--date', RUN_DATE, cwd=home, env=env, check=False)
    assert night.returncode == 3, night.stdout + night.stderr
    run = home/'runs'/RUN_DATE
    m = json.loads((run/'run.json').read_text())
    assert m['status'] == 'no_model'
    assert [p['status'] for p in m['phases']][:4] == ['succeeded'] * 4
    assert m['code']['git_commit'] is None  # no checkout behind a wheel install
    assert (run/'40_train.html').is_file() and (run/'index.html').is_file()
    assert sorted(p.name for p in home.iterdir()) == ['data', 'runs', 'settings.ini', 'state']
