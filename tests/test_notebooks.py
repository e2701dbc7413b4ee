"""Every notebook in nbs/ runs top to bottom with its default parameters (a demo night), its lesson cells passing."""
import os, subprocess, sys
from pathlib import Path
from conftest import REPO


def test_every_notebook_runs_and_its_lessons_pass():
    exe = Path(sys.executable).parent / 'nbdev-test'
    env = {k: v for k, v in os.environ.items() if not k.startswith('GOODBAD_')} | {'OMP_NUM_THREADS': '1'}
    res = subprocess.run([str(exe), '--n-workers', '2', '--timing'], cwd=REPO, capture_output=True, text=True, env=env, timeout=1200)
    assert res.returncode == 0, f"nbdev-test failed:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
