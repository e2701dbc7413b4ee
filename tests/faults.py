"""Fault injection into real nights, and the invariants that must hold after each fault.

Used by tests/test_faults.py (a few trials, in CI) and by bench/faults.py (the long mode: many trials of each fault on
SQLite and PostgreSQL, printing trials / survived / lost). A trial copies a workspace whose first night succeeded,
injects one fault into the next night, checks the invariants, then runs the same date again and checks that it
succeeds and that the invariants still hold:
- `customer_labels` is entirely one night's: one run id (last night's or one of tonight's), one row per customer;
- the history holds, for each night, the rows of one run, and no partial night;
- the registry holds exactly one champion, whose artifact exists and verifies (`registry_problems` finds nothing);
- no kernel of the killed night is left running.
"""
import os, random, shutil, signal, subprocess, sys, threading, time
from dataclasses import dataclass, field
from pathlib import Path
import psutil
import sqlalchemy as sa
from goodbad.settings import load_settings
from goodbad.contract import make_engine, settings_labels_tables
from goodbad.store import init_state, find_models, registry_problems

GOODBAD = Path(sys.executable).parent / 'goodbad'
PHASES = ('acquire', 'features', 'monitor', 'train', 'evaluate', 'fairness', 'explain', 'release', 'score')


def clean_env(extra: dict) -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith('GOODBAD_')} | extra


class Running:
    "A `goodbad nightly` in a process group of its own, as a scheduler starts it; its output gathered line by line"
    def __init__(self, ws, date: str, env: dict | None = None):
        self.lines, self.ws = [], ws
        self.proc = subprocess.Popen([str(GOODBAD), '--settings', str(ws.settings), 'nightly', '--date', date], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=clean_env(ws.env | (env or {})), start_new_session=True)
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def wait_for(self, text: str, timeout: float = 600) -> bool:
        "Wait until a line holding `text` is printed; False if the night ended first"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in list(self.lines)): return True
            if self.proc.poll() is not None: self.reader.join(5); return any(text in line for line in self.lines)
            time.sleep(0.05)
        raise TimeoutError(f"no line with {text!r} in {timeout}s")

    def phase_now(self) -> str:
        "The phase the night was in, from its progress lines"
        started = [line.split(']')[1].split()[0] for line in list(self.lines) if line.strip().startswith('[') and line.rstrip().endswith('...')]
        return started[-1] if started else 'start'

    def kill_group(self, sig=signal.SIGKILL) -> str:
        "Send `sig` to the whole process group (a scheduler's kill); where the night was"
        where = self.phase_now()
        try: os.killpg(self.proc.pid, sig)
        except ProcessLookupError: where = 'ended'
        self.proc.wait(120); self.reader.join(10)
        return where

    def finish(self, timeout: float = 900) -> int:
        rc = self.proc.wait(timeout); self.reader.join(10)
        return rc

    @property
    def output(self) -> str: return ''.join(self.lines)


def kernels_of(ws) -> list:
    "Kernel processes whose working folder is in the workspace"
    found = []
    for p in psutil.process_iter(['cmdline', 'cwd']):
        try:
            if 'goodbad.kernel' in ' '.join(p.info['cmdline'] or []) and str(ws.root) in (p.info['cwd'] or ''): found.append(p)
        except psutil.Error: pass
    return found


def staged_rows(ws) -> int:
    "Rows in the labels' staging table now (0 when it does not exist)"
    s = load_settings(ws.settings, environ=clean_env(ws.env))
    staging = settings_labels_tables(s)[2]
    engine = make_engine(s.labels_url)
    try:
        with engine.connect() as conn: return conn.execute(sa.select(sa.func.count()).select_from(staging)).scalar()
    except sa.exc.DBAPIError: return 0
    finally: engine.dispose()


def sigkill_in_phase(ws, date: str, phase: str, rng: random.Random, seconds: float = 8.0) -> str:
    "SIGKILL the night's process group at a random moment after `phase` starts; the phase it was in"
    night = Running(ws, date)
    if not night.wait_for(f'] {phase} ...'): return 'ended'
    time.sleep(rng.uniform(0, seconds))
    return night.kill_group()


def sigkill_in_label_write(ws, date: str, rng: random.Random) -> str:
    "SIGKILL the night's process group once labels are being staged, at a random moment of the write and its publication"
    night = Running(ws, date)
    night.wait_for('] score ...')
    while staged_rows(ws) == 0:
        if night.proc.poll() is not None: night.reader.join(5); return 'ended'
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.5))
    if night.kill_group() != 'score': return 'ended'
    return f"label write (customer_labels {'still last night' if staged_rows(ws) else 'already tonight'}'s)"


def invariants(ws, allowed_runs: set[str], date: str) -> list[str]:
    "What is broken in the workspace's labels, history and registry (empty: nothing); `allowed_runs` may own the labels"
    s = load_settings(ws.settings, environ=clean_env(ws.env))
    current, hist, _ = settings_labels_tables(s)
    labels, problems = make_engine(s.labels_url), []
    if not sa.inspect(labels).has_table(current.name, schema=current.schema): return ['customer_labels does not exist']
    with labels.connect() as conn:
        runs = conn.execute(sa.select(current.c.run_id, sa.func.count(), sa.func.count(sa.distinct(current.c.customer_id))).group_by(current.c.run_id)).all()
        per_night = conn.execute(sa.select(hist.c.run_date, sa.func.count(sa.distinct(hist.c.run_id)), sa.func.count()).group_by(hist.c.run_date)).all()
    labels.dispose()
    if len(runs) != 1: problems.append(f"customer_labels holds {len(runs)} runs: {[r[0] for r in runs]}")
    for run_id, rows, customers in runs:
        if rows != customers: problems.append(f"customer_labels has {rows} rows for {customers} customers")
        if run_id not in allowed_runs and not run_id.startswith(f'{date}.'): problems.append(f"customer_labels belongs to run {run_id}")
    for day, n_runs, rows in per_night:
        if n_runs != 1: problems.append(f"the history of {day} mixes {n_runs} runs")
        if runs and str(day) == runs[0][0].rsplit('.', 1)[0] and rows != runs[0][1]:
            problems.append(f"the history of {day} has {rows} rows against {runs[0][1]} labels: a partial night")
    state = init_state(make_engine(s.state_url))
    champions = find_models(state, status='champion')
    if len(champions) != 1: problems.append(f"{len(champions)} champions")
    problems += registry_problems(state, s.model_store)
    state.dispose()
    if left := kernels_of(ws): problems.append(f"{len(left)} kernel(s) of the killed night still running")
    return problems


@dataclass
class Trial:
    "One fault injected into one night, and what came of it"
    fault: str
    where: str
    problems: list = field(default_factory=list)

    @property
    def survived(self) -> bool: return not self.problems


def copy_workspace(ws, dest: Path):
    "A copy of a workspace, its runs included (the good night a fault must not harm)"
    shutil.copytree(ws.root, dest, ignore=shutil.ignore_patterns('.nightly.lock'))
    return type(ws)(dest, ws.env)


def leaks(ws, secrets: list[str], *outputs: str) -> list[str]:
    "Where any of `secrets` shows: the workspace's files (runs, pages, notebooks, state, logs) and the given terminal outputs"
    found = [f"{s[:4]}… in the terminal output" for s in secrets for out in outputs if s in out]
    for f in ws.root.rglob('*'):
        if f.is_file():
            data = f.read_bytes()
            found += [f"{s[:4]}… in {f.relative_to(ws.root)}" for s in secrets if s.encode() in data]
    return found


def trial(ws, date: str, fault: str, inject, good_run: str, secrets: list[str] = ()) -> Trial:
    "Inject `fault` (a function of the workspace returning where it struck), check, run the date again, check again"
    where = inject(ws)
    t = Trial(fault, where, invariants(ws, {good_run}, date))
    again = subprocess.run([str(GOODBAD), '--settings', str(ws.settings), 'nightly', '--date', date], capture_output=True, text=True,
                           env=clean_env(ws.env), timeout=1200)
    if again.returncode != 0: t.problems.append(f"the next run of {date} exited {again.returncode}: {(again.stdout + again.stderr)[-600:]}")
    t.problems += [f"after the rerun: {p}" for p in invariants(ws, set(), date)]
    t.problems += [f"a secret leaked: {p}" for p in leaks(ws, list(secrets), again.stdout, again.stderr)]
    return t
