"""Shared fixtures: a goodbad workspace in a temporary folder, the CLI as a subprocess, and the PostgreSQL server."""
import json, os, shutil, subprocess, sys, uuid
from pathlib import Path

# Two test workers on a machine of two cores: OpenMP threads in each (scikit-learn's gradient boosting) would only
# spin against each other. The notebooks' kernels inherit this too.
os.environ.setdefault('OMP_NUM_THREADS', '1')
import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
RUN_DATE = '2026-11-26'
CUSTOMERS = 15000  # enough outcomes for a model to pass the hold-out gates at the shipped policy


def goodbad(*args, env=None, check=None, cwd=None):
    "Run the goodbad command of this interpreter (in the folder `cwd`); returns the CompletedProcess"
    exe = Path(sys.executable).parent / 'goodbad'
    full_env = {k: v for k, v in os.environ.items() if not k.startswith('GOODBAD_')} | (env or {})
    res = subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, timeout=1200, cwd=cwd)
    if check is not None and res.returncode != check:
        raise AssertionError(f"goodbad {' '.join(args)} exited {res.returncode}, expected {check}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    return res


class Workspace:
    "A folder with its own settings.ini (a copy of the shipped policy), so data, state, models and runs land inside it"
    def __init__(self, root: Path, env: dict | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / 'settings.ini', root / 'settings.ini')
        self.env = {'GOODBAD_DEMO_CUSTOMERS': str(CUSTOMERS)} | (env or {})

    @property
    def settings(self): return self.root / 'settings.ini'
    @property
    def runs(self): return self.root / 'runs'
    @property
    def masterdata(self): return self.root / 'data' / 'masterdata.sqlite'

    def run(self, *args, check=None, env=None):
        return goodbad('--settings', str(self.settings), *args, env=self.env | (env or {}), check=check)

    def nightly(self, date=RUN_DATE, check=0, env=None):
        return self.run('nightly', '--date', date, check=check, env=env)

    def manifest(self, date=RUN_DATE):
        return json.loads((self.runs / date / 'run.json').read_text())

    def copy(self, dest: Path) -> 'Workspace':
        shutil.copytree(self.root, dest, ignore=shutil.ignore_patterns('runs'))
        return Workspace(dest, self.env)


def labels_of(url, table='customer_labels', schema=None):
    "customer_labels as a sorted list of (customer_id, label, score, model_version, run_id)"
    engine = sa.create_engine(url)
    t = sa.Table(table, sa.MetaData(schema=schema), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.customer_id, t.c.label, t.c.score, t.c.model_version, t.c.run_id).order_by(t.c.customer_id)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


_ONCE = {}  # pytest-xdist may tear a session fixture down between batches of tests; the night is still run once


@pytest.fixture(scope='session')
def night(tmp_path_factory):
    "A workspace in which tonight's nightly run has succeeded on the embedded SQLite default (demo data created by it)"
    if 'night' not in _ONCE:
        ws = Workspace(tmp_path_factory.mktemp('sqlite-night'))
        ws.stdout = ws.nightly(check=0).stdout
        _ONCE['night'] = ws
    return _ONCE['night']


@pytest.fixture(scope='session')
def pg_url():
    "The PostgreSQL server's URL from GOODBAD_TEST_POSTGRES_URL; skipped when unset, a failure when set but unreachable"
    url = os.environ.get('GOODBAD_TEST_POSTGRES_URL')
    if not url: pytest.skip('GOODBAD_TEST_POSTGRES_URL is not set (.ci/run sets it)')
    engine = sa.create_engine(url.replace('postgresql://', 'postgresql+psycopg://', 1))
    try:
        with engine.connect() as conn: conn.execute(sa.text('select 1'))
    except Exception as e:
        pytest.fail(f"GOODBAD_TEST_POSTGRES_URL is set but the server does not answer: {e}")
    finally: engine.dispose()
    return url


@pytest.fixture
def pg_schema(pg_url):
    "A fresh PostgreSQL schema for one test, dropped afterwards"
    name = f"goodbad_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_url.replace('postgresql://', 'postgresql+psycopg://', 1))
    with engine.begin() as conn: conn.execute(sa.text(f'create schema {name}'))
    yield name
    with engine.begin() as conn: conn.execute(sa.text(f'drop schema {name} cascade'))
    engine.dispose()
