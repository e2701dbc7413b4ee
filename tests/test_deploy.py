"""The ways a business schedules the nightly job (deploy/): the Airflow DAG, the systemd units, the container image."""
import importlib.util, json, os, re, shlex, shutil, subprocess, sys, types, uuid
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo
import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / 'deploy'
DAG_FILE = DEPLOY / 'airflow' / 'goodbad_nightly_dag.py'
SERVICE = DEPLOY / 'systemd' / 'goodbad-nightly.service'
TIMER = DEPLOY / 'systemd' / 'goodbad-nightly.timer'
DOCKERFILE = DEPLOY / 'Dockerfile'
NIGHT = '2026-11-26'


# --- Airflow ----------------------------------------------------------------------------------------------------------
# Airflow is not a dependency of goodbad (it is large): the DAG file is imported against a fake `airflow` whose DAG and
# BashOperator record what they are given. Where Airflow is installed, the DAG is also loaded for real (DagBag).

class FakeDAG:
    "A DAG context manager that keeps its arguments and the tasks made inside it"
    current = None
    def __init__(self, dag_id=None, **kw): self.dag_id, self.kw, self.tasks = dag_id, kw, []
    def __enter__(self): FakeDAG.current = self; return self
    def __exit__(self, *exc): FakeDAG.current = None


class FakeBashOperator:
    "A BashOperator that keeps its arguments and joins the DAG it is made in"
    def __init__(self, task_id, bash_command, **kw):
        self.task_id, self.bash_command, self.kw = task_id, bash_command, kw
        assert FakeDAG.current is not None, 'the task is made outside `with DAG(...)`'
        FakeDAG.current.tasks.append(self)


FAKE_AIRFLOW = {  # module name -> the names it provides, as each major version lays them out
    'airflow 3': {'airflow': {}, 'airflow.sdk': {'DAG': FakeDAG}, 'airflow.providers': {}, 'airflow.providers.standard': {},
                  'airflow.providers.standard.operators': {}, 'airflow.providers.standard.operators.bash': {'BashOperator': FakeBashOperator}},
    'airflow 2': {'airflow': {'DAG': FakeDAG}, 'airflow.operators': {}, 'airflow.operators.bash': {'BashOperator': FakeBashOperator}},
}


def _load_dag_module(monkeypatch, layout: str):
    "The DAG file, imported against the fake airflow of `layout`; only the fake's modules are importable as airflow"
    for name in [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')]: monkeypatch.delitem(sys.modules, name)
    for name, attrs in FAKE_AIRFLOW[layout].items():
        mod = types.ModuleType(name)
        mod.__path__ = []  # a package, so that its submodules resolve through sys.modules only
        for k, v in attrs.items(): setattr(mod, k, v)
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(sys, 'dont_write_bytecode', True)  # no __pycache__ left in deploy/
    spec = importlib.util.spec_from_file_location(f'goodbad_nightly_dag_{uuid.uuid4().hex}', DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=list(FAKE_AIRFLOW))
def dag_module(request, monkeypatch):
    return _load_dag_module(monkeypatch, request.param)


def test_the_dag_runs_goodbad_nightly_at_0130_once_with_no_blind_retries(dag_module):
    dag = dag_module.dag
    assert isinstance(dag, FakeDAG) and dag.dag_id == 'goodbad_nightly'
    assert dag.kw['schedule'] == '30 1 * * *'
    assert dag.kw['catchup'] is False
    assert dag.kw.get('max_active_runs') == 1
    assert [t.task_id for t in dag.tasks] == ['nightly']
    task = dag.tasks[0]
    # Airflow retries whatever the exit status: a failed phase (1) must reach a person, so they stay at 0
    assert task.kw['retries'] == 0 and dag.kw.get('default_args', {}).get('retries', 0) == 0
    assert re.search(r"goodbad'? nightly --date \{\{.+\}\} --json$", task.bash_command, re.M), task.bash_command
    assert task.bash_command == dag_module.nightly_command()
    assert task.kw['cwd'] == dag_module.GOODBAD_HOME == '/srv/goodbad'
    assert task.kw['execution_timeout'].total_seconds() > 0


class _DueAt(datetime):
    "A datetime with pendulum's in_timezone, as Airflow hands data_interval_end to a template"
    def in_timezone(self, tz): return _DueAt.fromtimestamp(self.timestamp(), tz)


def _render(template: str, **context) -> str:
    "The template rendered as Airflow does (sandboxed Jinja with its `ds` filter); anything undefined is an error"
    jinja2 = pytest.importorskip('jinja2')
    from jinja2.sandbox import SandboxedEnvironment
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    env.filters['ds'] = lambda value: value.strftime('%Y-%m-%d')
    return env.from_string(template).render(**context)


UTC = ZoneInfo('UTC')
DUE = _DueAt(2026, 11, 26, 1, 30, tzinfo=UTC)  # the night of 2026-11-26, due at 01:30 that day
DATE_CONTEXTS = {  # what each Airflow gives the run due on 2026-11-26 at 01:30 (or started by hand that day)
    'airflow 2, scheduled': dict(ds='2026-11-25', data_interval_end=DUE, dag_run=types.SimpleNamespace(), dag=types.SimpleNamespace(timezone=UTC)),
    'airflow 3, scheduled': dict(ds=NIGHT, data_interval_end=DUE, dag_run=types.SimpleNamespace(run_after=DUE), dag=types.SimpleNamespace(timezone=UTC)),
    'airflow 3, by hand, no logical date': dict(data_interval_end=None, dag_run=types.SimpleNamespace(run_after=_DueAt(2026, 11, 26, 9, 12, tzinfo=UTC)),
                                                dag=types.SimpleNamespace(timezone=UTC)),
    'airflow 2, DAG in Tokyo': dict(ds='2026-11-24', data_interval_end=_DueAt(2026, 11, 25, 16, 30, tzinfo=UTC), dag_run=types.SimpleNamespace(),
                                    dag=types.SimpleNamespace(timezone=ZoneInfo('Asia/Tokyo'))),
}


@pytest.mark.parametrize('context', list(DATE_CONTEXTS))
def test_the_night_is_the_day_the_run_starts_on_airflow_2_and_3(dag_module, context):
    # cron and the systemd timer run `goodbad nightly` at 01:30 for that day: the DAG must name the same night,
    # although Airflow 2's {{ ds }} is the day before for a cron schedule
    script = _render(dag_module.dag.tasks[0].bash_command, **DATE_CONTEXTS[context])
    assert re.search(rf"goodbad'? nightly --date {NIGHT} --json$", script, re.M), script


FAKE_GOODBAD = """#!/bin/sh
echo "$*|$GOODBAD_STATE_URL|$(pwd)" >> '{calls}'
exit "$(sed -n "$(wc -l < '{calls}')p" '{statuses}')"
"""


def _run_task_script(dag_module, tmp_path, statuses: list[int]):
    "The task's bash script, rendered for the night and run by bash with a fake goodbad (exiting `statuses` in turn)"
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls, sleeps, status_file, env_file = tmp_path / 'calls', tmp_path / 'sleeps', tmp_path / 'statuses', tmp_path / 'env'
    status_file.write_text(''.join(f'{s}\n' for s in statuses))
    env_file.write_text('GOODBAD_STATE_URL=sqlite:///state/goodbad.sqlite\n')
    (bin_dir / 'goodbad').write_text(FAKE_GOODBAD.format(calls=calls, statuses=status_file))
    (bin_dir / 'sleep').write_text(f"#!/bin/sh\necho \"$*\" >> '{sleeps}'\n")  # no waiting, but each wait recorded
    for f in ('goodbad', 'sleep'): (bin_dir / f).chmod(0o755)
    task = dag_module.dag.tasks[0]
    # only the two paths of the machine the DAG was written for change: the executable, and the environment file
    assert task.bash_command.count(f"'{dag_module.GOODBAD}'") == 1 and task.bash_command.count(f"'{dag_module.ENV_FILE}'") == 2
    script = task.bash_command.replace(f"'{dag_module.GOODBAD}'", 'goodbad').replace(f"'{dag_module.ENV_FILE}'", f"'{env_file}'")
    script = _render(script, **DATE_CONTEXTS['airflow 3, scheduled'])
    env = {k: v for k, v in os.environ.items() if not k.startswith('GOODBAD_')} | {'PATH': f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    work = tmp_path / 'home'
    work.mkdir()
    res = subprocess.run(['bash', '-c', script], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    ran = calls.read_text().splitlines() if calls.exists() else []
    waited = sleeps.read_text().split() if sleeps.exists() else []
    return res, ran, waited, work


@pytest.mark.parametrize('statuses, task_status, runs', [
    ([0], 0, 1),        # succeeded
    ([3], 0, 1),        # no model: counted as success
    ([1], 1, 1),        # a phase failed: failed, and never run again
    ([2, 0], 0, 2),     # could not start (the lock), then succeeded
    ([2, 3], 0, 2),     # could not start, then no model
    ([2, 1], 1, 2),     # could not start, then a phase failed: not retried further
    ([2, 2, 2], 2, 3),  # could not start three times: the task fails
])
def test_the_task_turns_each_exit_status_into_success_failure_or_a_retry(dag_module, tmp_path, statuses, task_status, runs):
    res, ran, waited, work = _run_task_script(dag_module, tmp_path, statuses)
    assert res.returncode == task_status, (res.stdout, res.stderr)
    assert len(ran) == runs, ran
    # every run is the same night, with the URLs of the environment file, in the folder the task runs in
    assert set(ran) == {f"nightly --date {NIGHT} --json|sqlite:///state/goodbad.sqlite|{work}"}
    assert waited == [str(dag_module.START_RETRY_DELAY_SECONDS)] * (runs - 1)
    assert ('counted as success' in res.stderr) == (statuses[-1] == 3)


def test_the_dag_loads_in_a_real_airflow():
    if importlib.util.find_spec('airflow') is None:
        pytest.skip('Airflow is not installed (it is not a goodbad dependency); the DAG is checked against a fake airflow above')
    try: from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1 and later
    except ImportError: from airflow.models import DagBag
    bag = DagBag(dag_folder=str(DAG_FILE), include_examples=False)
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag('goodbad_nightly')
    assert dag is not None and dag.catchup is False
    assert '30 1 * * *' in dag.timetable.summary
    task = dag.get_task('nightly')
    assert task.retries == 0
    assert re.search(r"goodbad'? nightly --date \{\{.+\}\} --json$", task.bash_command, re.M)


# --- systemd ----------------------------------------------------------------------------------------------------------

def _unit(path: Path) -> dict:
    "A unit file as {section: {key: [values]}} (a key may repeat)"
    out, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in '#;': continue
        if line.startswith('['): section = out.setdefault(line.strip('[]'), {}); continue
        key, _, value = line.partition('=')
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_service_runs_one_night_as_its_own_user_and_3_is_not_a_failure():
    s = _unit(SERVICE)['Service']
    assert s['Type'] == ['oneshot']
    assert s['User'][-1] not in ('root', '0') and s['Group'][-1] not in ('root', '0')
    assert s['WorkingDirectory'] == ['/srv/goodbad']
    assert s['EnvironmentFile'] == ['-/etc/goodbad/env']
    argv = shlex.split(s['ExecStart'][-1])
    assert Path(argv[0]).name == 'goodbad' and argv[1:] == ['nightly']
    success = ' '.join(s['SuccessExitStatus']).split()
    assert '3' in success and not {'1', '2'} & set(success)
    assert s['KillMode'] == ['mixed']  # SIGTERM to the runner alone: it stops its kernels and records the night
    assert s['TimeoutStartSec'][-1] not in ('infinity', '0')
    assert s['NoNewPrivileges'] == ['yes'] and s['ProtectSystem'] == ['strict']
    assert '/srv/goodbad' in ' '.join(s['ReadWritePaths']).split()
    assert 'Restart' not in s  # a failed night is for a person, not a loop


def test_the_timer_starts_the_service_at_0130_and_catches_up_a_missed_night():
    t = _unit(TIMER)
    assert t['Timer']['OnCalendar'] == ['*-*-* 01:30:00']
    assert t['Timer']['Persistent'] == ['true']
    assert t['Timer']['Unit'] == [SERVICE.name] and (TIMER.parent / SERVICE.name).is_file()
    assert t['Install']['WantedBy'] == ['timers.target']


SYSTEMD_ANALYZE = shutil.which('systemd-analyze')
needs_systemd_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason='systemd-analyze is not installed')


def _units_in(folder: Path) -> tuple[Path, Path]:
    """Copies of the units in `folder`, ExecStart pointing at an executable that exists here: systemd-analyze verify
    refuses a unit whose command is missing, and /srv/goodbad/.venv/bin/goodbad is where a server has it, not here"""
    exe = Path(sys.executable).parent / 'goodbad'
    exe = exe if exe.is_file() else Path(sys.executable)
    text = SERVICE.read_text()
    assert text.count('ExecStart=/srv/goodbad/.venv/bin/goodbad ') == 1
    service = folder / SERVICE.name
    service.write_text(text.replace('ExecStart=/srv/goodbad/.venv/bin/goodbad ', f'ExecStart={exe} '))
    timer = folder / TIMER.name
    shutil.copy(TIMER, timer)
    return service, timer


def _verify(*units: Path) -> list[str]:
    "What systemd-analyze verify says about `units`, less what it says about the host's own unit files"
    res = subprocess.run([SYSTEMD_ANALYZE, 'verify', '--man=no', *map(str, units)], capture_output=True, text=True, timeout=120,
                         cwd=units[0].parent)
    lines = [l for l in (res.stdout + res.stderr).splitlines() if l.strip()]
    # on a machine booted with systemd, verify also loads the units ours name (network-online.target, timers.target)
    # and may remark on those files: not ours to fix. Nothing else is left out.
    host = re.compile(r'^/(usr/lib|lib|etc|run)/systemd/')
    return [f'exit status {res.returncode}'] * (res.returncode != 0) + [l for l in lines if not host.match(l)]


@needs_systemd_analyze
def test_systemd_analyze_verify_finds_nothing_to_say_about_the_units(tmp_path):
    service, timer = _units_in(tmp_path)
    assert _verify(service, timer) == []
    # verify exits 0 on a misspelt setting, only saying so: the silence above is the check, and it can speak
    service.write_text(service.read_text().replace('KillMode=mixed', 'KillMode=mixd'))
    assert any('mixd' in line for line in _verify(service, timer))


@needs_systemd_analyze
def test_the_service_is_hardened(tmp_path):
    service, _ = _units_in(tmp_path)
    # the exposure it prints is out of 10 (0 the most confined); --threshold is on that scale times 10. An unconfined
    # service scores about 9.6; this one about 1.5: over 3 means hardening was taken away
    res = subprocess.run([SYSTEMD_ANALYZE, 'security', '--offline=true', '--threshold=30', '--no-pager', str(service)],
                         capture_output=True, text=True, timeout=120)
    if 'unrecognized option' in res.stderr: pytest.skip(f'this systemd-analyze cannot judge a unit file offline: {res.stderr.strip()}')
    exposure = re.search(r'Overall exposure level for \S+: ([\d.]+)', res.stdout)
    assert res.returncode == 0 and exposure and float(exposure.group(1)) <= 3, res.stdout[-2000:] + res.stderr


# --- container ----------------------------------------------------------------------------------------------------------

def _instructions(path: Path) -> list[tuple[str, str]]:
    "The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments left out"
    out, pending = [], ''
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith('#')): continue
        pending += line.rstrip()
        if pending.endswith('\\'): pending = pending[:-1] + ' '; continue
        word, _, rest = pending.strip().partition(' ')
        out.append((word.upper(), ' '.join(rest.split())))
        pending = ''
    return out


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    stages = []
    for ins in _instructions(path):
        if ins[0] == 'FROM': stages.append([])
        stages[-1].append(ins)
    return stages


def test_the_dockerfile_builds_a_wheel_and_runs_goodbad_as_a_user_of_its_own():
    builder, final = _stages(DOCKERFILE)
    assert builder[0] == ('FROM', 'python:3.11-slim AS builder') and final[0] == ('FROM', 'python:3.11-slim')
    build = [a for i, a in builder if i == 'RUN']
    assert any(re.search(r'\bpip wheel\b.*--no-deps.*-w /dist \.$', a) for a in build), build
    assert any(i == 'COPY' and a.startswith('--from=builder /dist') for i, a in final)
    installs = [a for i, a in final if i == 'RUN' and re.search(r'\bpip install\b.*goodbad-\*\.whl', a)]
    assert len(installs) == 1 and '--no-deps' not in installs[0]  # the wheel with its dependencies
    users = [k for k, (i, _) in enumerate(final) if i == 'USER']
    assert users and final[users[-1]][1] not in ('root', '0', '0:0')
    assert ('WORKDIR', '/srv/goodbad') in final
    # goodbad init writes the policy as that user, into the folder the settings variable names
    init = [k for k, (i, a) in enumerate(final) if i == 'RUN' and re.search(r'\bgoodbad init /srv/goodbad\b', a)]
    assert len(init) == 1 and init[0] > users[-1]
    assert ('ENV', 'GOODBAD_SETTINGS=/srv/goodbad/settings.ini') in final
    volumes = [k for k, (i, _) in enumerate(final) if i == 'VOLUME']
    assert len(volumes) == 1
    assert set(json.loads(final[volumes[0]][1])) == {f'/srv/goodbad/{d}' for d in ('runs', 'models', 'state', 'data')}
    # a RUN after VOLUME would change the volumes' folders in a throwaway layer only; they are made before it
    assert not [a for i, a in final[volumes[0]:] if i == 'RUN']
    assert any(i == 'RUN' and 'mkdir -p runs models state data' in a for i, a in final[:volumes[0]])
    assert final[-2:] == [('ENTRYPOINT', '["goodbad"]'), ('CMD', '["nightly"]')]


@pytest.mark.parametrize('policy', ['written by goodbad init', 'settings.ini of the repository'])
def test_the_volumes_hold_the_folders_the_policy_writes_to(tmp_path, policy):
    # the image runs `goodbad init /srv/goodbad`; its relative paths are relative to the file, so each folder the night
    # writes to (the record, the model store, the state, the demo master data) must be one of the volumes
    from goodbad.settings import load_settings
    home = tmp_path / 'srv'
    if policy == 'written by goodbad init':
        res = subprocess.run([str(Path(sys.executable).parent / 'goodbad'), 'init', str(home)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
    else:
        home.mkdir()
        shutil.copy(REPO / 'settings.ini', home / 'settings.ini')
    s = load_settings(home / 'settings.ini', environ={})
    tops = {Path(p).relative_to(home).parts[0] for p in (s.runs_dir, s.model_store, s.state_default, s.masterdata_default)}
    volumes = next(json.loads(a) for i, a in _instructions(DOCKERFILE) if i == 'VOLUME')
    assert {f'/srv/goodbad/{t}' for t in tops} == set(volumes)


def test_the_build_context_leaves_out_a_machines_output_and_state():
    ignored = {l.strip() for l in (REPO / '.dockerignore').read_text().splitlines() if l.strip() and not l.startswith('#')}
    assert {'.venv', 'runs', 'data', 'state', 'models', '.git', 'dist', 'build', '**/__pycache__', '**/*.egg-info'} <= ignored
    assert not {'nbs', 'goodbad', 'pyproject.toml', 'settings.ini', 'README.md'} & ignored  # what the wheel is built from


def _docker_engine() -> str | None:
    "Why there is no Docker engine to build with, or None when there is one"
    if shutil.which('docker') is None: return 'the docker client is not installed'
    try: res = subprocess.run(['docker', 'info'], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired: return 'docker info did not answer within 60 s'
    return None if res.returncode == 0 else f"no Docker engine answers `docker info`: {(res.stderr.strip().splitlines() or ['?'])[-1]}"


def test_the_image_builds_and_runs_a_night():
    why_not = _docker_engine()
    if why_not: pytest.skip(why_not + '; the Dockerfile is checked statically above')
    image = f'goodbad-test:{uuid.uuid4().hex[:12]}'
    try:
        subprocess.run(['docker', 'build', '-f', str(DOCKERFILE), '-t', image, '.'], cwd=REPO, check=True, timeout=3600)
        version = subprocess.run(['docker', 'run', '--rm', image, '--version'], capture_output=True, text=True, timeout=300)
        assert version.returncode == 0 and version.stdout.startswith('goodbad '), version
        uid = subprocess.run(['docker', 'run', '--rm', '--entrypoint', 'id', image, '-u'], capture_output=True, text=True, timeout=300)
        assert uid.returncode == 0 and uid.stdout.strip() != '0', uid
        night = subprocess.run(['docker', 'run', '--rm', '--init', '-e', 'GOODBAD_DEMO_CUSTOMERS=2000', image,
                                'nightly', '--date', NIGHT, '--json'], capture_output=True, text=True, timeout=1800)
        assert night.returncode in (0, 3), night.stdout[-3000:] + night.stderr[-3000:]
        summary = json.loads(night.stdout)
        assert summary['run_date'] == NIGHT and summary['exit_status'] == night.returncode
    finally:
        subprocess.run(['docker', 'rmi', '-f', image], capture_output=True, timeout=300)


def test_the_readme_shows_each_kit_with_paths_that_exist():
    text = (REPO / 'README.md').read_text().split('## For the scheduler', 1)[1].split('\n## ', 1)[0]
    for command in ('docker build -f deploy/Dockerfile -t goodbad .', 'systemctl enable --now goodbad-nightly.timer',
                    'cp deploy/airflow/goodbad_nightly_dag.py'):
        assert command in text, command
    named = set(re.findall(r'deploy/[\w./-]*\w', text))
    assert named and all((REPO / p).exists() for p in named), sorted(p for p in named if not (REPO / p).exists())
    assert re.search(r'^\| 3 \|.*\| success', text, re.M)  # the exit-status table says what no model becomes
