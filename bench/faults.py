"""The fault-injection suite's long mode: many trials of each fault, each on a copy of a workspace whose first night
succeeded, each followed by the invariants and by a run of the same date that must succeed (tests/faults.py).
Prints, for each fault, trials / survived / lost, and what was lost.

Usage: .venv/bin/python bench/faults.py [--trials 3] [--faults sigkill_phase,sigkill_label_write,...] [--postgres]
       [--customers 15000] [--workdir /tmp/goodbad-bench-faults] [--seed 1]
--postgres puts the master data (and so the labels) on a PostgreSQL cluster of the run's own (initdb into the work
folder, its own port), never the machine's shared server, so that the "server goes away" faults can stop it.
A trial takes about a minute at 15,000 customers (a killed night, then a whole one).
"""
import argparse, json, os, pickle, random, shutil, signal, socket, subprocess, sys, time
from collections import defaultdict
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tests'))
os.environ.setdefault('OMP_NUM_THREADS', '1')
from conftest import Workspace  # noqa: E402  (the tests' workspace: a folder with its own settings.ini)
from faults import (GOODBAD, PHASES, Running, Trial, clean_env, copy_workspace, sigkill_in_label_write, sigkill_in_phase,  # noqa: E402
                    trial)
import sqlalchemy as sa  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from goodbad.settings import load_settings  # noqa: E402
from goodbad.contract import make_engine  # noqa: E402
from goodbad.store import init_state, find_models  # noqa: E402

FIRST, NEXT = '2026-11-26', '2026-11-27'
TOKEN = 'webhook-token-5d1e0c'  # in the alert webhook's URL: it must show nowhere, in any fault
PASSWORD = 'pg-password-93fa2b'  # in the master-data URL (--postgres; the cluster trusts, so any password connects)


class OwnCluster:
    "A PostgreSQL cluster of this run's own: its data folder in the work folder, its own port; stopped and started at will"
    def __init__(self, folder: Path):
        self.folder, self.port = folder, self._free_port()
        bindir = Path(subprocess.run(['pg_config', '--bindir'], capture_output=True, text=True).stdout.strip() or '/usr/lib/postgresql/15/bin')
        self.bin = lambda name: str(bindir / name) if (bindir / name).exists() else name
        folder.mkdir(parents=True)
        self.as_owner = ['runuser', '-u', 'postgres', '--'] if os.geteuid() == 0 else []
        if os.geteuid() == 0: shutil.chown(folder, 'postgres', 'postgres')
        self._run(self.bin('initdb'), '-D', str(folder / 'data'), '-U', 'postgres', '-A', 'trust', '--no-sync')
        self.start()
        self._run(self.bin('createdb'), '-h', '127.0.0.1', '-p', str(self.port), '-U', 'postgres', 'goodbad')

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

    def _run(self, *cmd):
        subprocess.run([*self.as_owner, *cmd], check=True, capture_output=True, cwd=self.folder)

    @property
    def url(self) -> str: return f'postgresql://postgres@127.0.0.1:{self.port}/goodbad'

    def start(self):
        self._run(self.bin('pg_ctl'), '-D', str(self.folder / 'data'), '-l', str(self.folder / 'log'), '-w',
                  '-o', f'-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off', 'start')

    def stop(self, mode='immediate'):
        self._run(self.bin('pg_ctl'), '-D', str(self.folder / 'data'), '-m', mode, '-w', 'stop')


def base_workspace(root: Path, customers: int, cluster: OwnCluster | None) -> Workspace:
    "A workspace whose night of FIRST succeeded"
    env = {'GOODBAD_DEMO_CUSTOMERS': str(customers), 'GOODBAD_ALERT_WEBHOOK': f'http://127.0.0.1:9/alerts?token={TOKEN}'}
    if cluster: env['GOODBAD_MASTERDATA_URL'] = cluster.url.replace('postgres@', f'postgres:{PASSWORD}@')
    ws = Workspace(root, env)
    if cluster: ws.run('masterdata', 'create', '--customers', str(customers), '--seed', '20261126', '--end', '2026-11-25', check=0)
    ws.nightly(FIRST, check=0)
    return ws


def champion_artifact(ws) -> Path:
    s = load_settings(ws.settings, environ=clean_env(ws.env))
    champ = find_models(init_state(make_engine(s.state_url)), status='champion')[0]
    return Path(s.model_store) / champ.artifact


def refused_then_restored(ws, break_it, restore, why) -> str:
    "A fault present at start: the night must exit 2 naming it, and run once it is repaired (by the trial's rerun)"
    undo = break_it(ws)
    res = subprocess.run([str(GOODBAD), '--settings', str(ws.settings), 'nightly', '--date', NEXT], capture_output=True, text=True,
                         env=clean_env(ws.env), timeout=600)
    restore(ws, undo)
    if res.returncode != 2 or why not in res.stderr: return f'not refused: exit {res.returncode}: {res.stderr[-300:]}'
    return 'refused at start'


def _replace_artifact(ws):
    path = champion_artifact(ws); kept = path.read_bytes()
    path.chmod(0o644); path.write_bytes(pickle.dumps(DummyClassifier(strategy='prior').fit([[0], [1]], [0, 1])))
    return path, kept


def _delete_artifact(ws):
    path = champion_artifact(ws); kept = path.read_bytes(); path.unlink()
    return path, kept


def _put_back(ws, undo):
    path, kept = undo; path.write_bytes(kept)


def _truncate_state(ws):
    path = ws.root / 'state' / 'goodbad.sqlite'; kept = path.read_bytes(); path.write_bytes(kept[:len(kept) // 3])
    return path, kept


def _read_only_runs(ws):
    subprocess.run(['mount', '--bind', '-o', 'ro', str(ws.runs), str(ws.runs)], check=True)
    return ws.runs


def _unmount(ws, folder): subprocess.run(['umount', str(folder)], check=True)


def sigterm(ws, rng) -> str:
    "A scheduler's timeout: SIGTERM to the runner alone, at a random moment of a random phase; it must record the night"
    night = Running(ws, NEXT)
    phase = rng.choice(PHASES)
    if not night.wait_for(f'] {phase} ...'): return 'ended'
    time.sleep(rng.uniform(0, 6))
    where = night.phase_now()
    night.proc.send_signal(signal.SIGTERM)
    rc = night.finish(300)
    if rc == 0: return 'ended'
    m = json.loads((ws.runs / NEXT / 'run.json').read_text())
    return where if rc == 1 and m['status'] == 'failed' and 'stopped by SIGTERM' in (m['error'] or '') else f'unrecorded (exit {rc}, {m["status"]})'


def two_at_once(ws, rng) -> str:
    "Two schedulers start the same night together: one runs, the other is refused"
    a, b = Running(ws, NEXT), Running(ws, NEXT)
    ra, rb = a.finish(), b.finish()
    return 'one refused' if sorted([ra, rb]) == [0, 2] else f'exits {ra}, {rb}'


def approve_during(ws, rng) -> str:
    "A person approves and promotes while a night runs: each is refused or done whole, and the night goes on"
    night = Running(ws, NEXT)
    night.wait_for(f'] {rng.choice(PHASES)} ...')
    s = load_settings(ws.settings, environ=clean_env(ws.env))
    champ = find_models(init_state(make_engine(s.state_url)), status='champion')[0].version
    for cmd in (['approve', champ, '--by', 'a person'], ['promote', champ, '--by', 'a person'], ['rollback', '--by', 'a person']):
        subprocess.run([str(GOODBAD), '--settings', str(ws.settings), *cmd], capture_output=True, env=clean_env(ws.env), timeout=120)
    rc = night.finish()
    return 'night went on' if rc == 0 else f'night exited {rc}'


def labels_refuse_writes(ws, rng) -> str:
    "The labels database opened read-only (it refuses every write): the night fails in score and publishes nothing"
    md = ws.root / 'data' / 'masterdata.sqlite'
    night = Running(ws, NEXT, env={'GOODBAD_LABELS_URL': f'sqlite:///file:{md}?mode=ro&uri=true'})
    rc = night.finish()
    return 'failed, nothing published' if rc == 1 else f'exit {rc}'


def server_goes_away(cluster):
    def inject(ws, rng) -> str:
        "The master-data server stops (immediate shutdown) at a random moment of a random phase, and comes back later"
        night = Running(ws, NEXT)
        if not night.wait_for(f'] {rng.choice(PHASES)} ...'): return 'ended'
        time.sleep(rng.uniform(0, 6))
        where = night.phase_now()
        cluster.stop()
        rc = night.finish()
        cluster.start()
        return where if rc in (1, 2) else f'exit {rc}'
    return inject


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--trials', type=int, default=3, help='trials of each fault (SIGKILL in a phase: this many per phase)')
    p.add_argument('--label-write-trials', type=int, help='trials of the SIGKILL in the label write (default: --trials)')
    p.add_argument('--faults', help='comma-separated subset of the faults (default: all)')
    p.add_argument('--postgres', action='store_true', help='master data and labels on a PostgreSQL cluster of the run\'s own')
    p.add_argument('--customers', type=int, default=15_000)
    p.add_argument('--workdir', default='/tmp/goodbad-bench-faults')
    p.add_argument('--seed', type=int, default=1)
    a = p.parse_args()
    work = Path(a.workdir)
    shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
    cluster = OwnCluster(work / 'pg') if a.postgres else None
    rng = random.Random(a.seed)
    t0 = time.perf_counter()
    base = base_workspace(work / 'base', a.customers, cluster)
    good = base.manifest(FIRST)['run_id']
    print(f"base night {good} on {'an own PostgreSQL cluster' if cluster else 'SQLite'} in {time.perf_counter() - t0:.0f}s", flush=True)
    faults = {f'sigkill_{ph}': (lambda ph: lambda ws, r: sigkill_in_phase(ws, NEXT, ph, r))(ph) for ph in PHASES}
    faults |= {
        'sigkill_label_write': lambda ws, r: sigkill_in_label_write(ws, NEXT, r),
        'sigterm': sigterm, 'two_at_once': two_at_once, 'approve_during_night': approve_during,
        'artifact_replaced': lambda ws, r: refused_then_restored(ws, _replace_artifact, _put_back, 'is not the one registered'),
        'artifact_deleted': lambda ws, r: refused_then_restored(ws, _delete_artifact, _put_back, 'is missing'),
    }
    if cluster is None:
        faults |= {'state_truncated': lambda ws, r: refused_then_restored(ws, _truncate_state, _put_back, 'cannot be used'),
                   'labels_refuse_writes': labels_refuse_writes}
        if os.geteuid() == 0: faults['runs_read_only'] = lambda ws, r: refused_then_restored(ws, _read_only_runs, _unmount, 'cannot be written')
    else:
        faults['server_goes_away'] = server_goes_away(cluster)
        faults['server_down_at_start'] = lambda ws, r: refused_then_restored(ws, lambda w: cluster.stop(), lambda w, u: cluster.start(), 'cannot be read')
    chosen = a.faults.split(',') if a.faults else list(faults)
    tally, lost = defaultdict(lambda: [0, 0]), []
    for name in chosen:
        for i in range(a.label_write_trials or a.trials if name == 'sigkill_label_write' else a.trials):
            if cluster:  # one master data on the cluster: each trial starts from the base night's labels there
                restore_labels(cluster, base)
            ws = copy_workspace(base, work / f'{name}-{i}')
            t = Trial(name, '?')
            try: t = trial_of(ws, name, faults[name], rng, good)
            except Exception as e: t.problems.append(f'{type(e).__name__}: {e}')
            tally[name][0] += 1; tally[name][1] += t.survived
            if not t.survived: lost.append(t)
            print(f"  {name} #{i + 1}: {t.where}: {'survived' if t.survived else 'LOST: ' + '; '.join(t.problems)}", flush=True)
            shutil.rmtree(ws.root, ignore_errors=True)
    print(f"\n{'fault':<24} {'trials':>6} {'survived':>8} {'lost':>5}")
    for name, (n, ok) in tally.items(): print(f"{name:<24} {n:>6} {ok:>8} {n - ok:>5}")
    n, ok = sum(v[0] for v in tally.values()), sum(v[1] for v in tally.values())
    print(f"{'all':<24} {n:>6} {ok:>8} {n - ok:>5}   ({'PostgreSQL' if cluster else 'SQLite'}, {a.customers:,} customers, {time.perf_counter() - t0:.0f}s)")
    if cluster: cluster.stop('fast')
    return 1 if lost else 0


def trial_of(ws, name, inject, rng, good) -> Trial:
    return trial(ws, NEXT, name, lambda w: inject(w, rng), good, secrets=[TOKEN, PASSWORD])


LABEL_TABLES = ('customer_labels', 'customer_labels_history', 'customer_labels_staging')


def restore_labels(cluster, base):
    "Put the base night's labels tables back on the cluster (a trial's night wrote there): copies kept under other names"
    engine = make_engine(cluster.url)
    with engine.begin() as conn:
        for t in LABEL_TABLES:
            if not sa.inspect(conn).has_table(f'base_{t}'):
                if sa.inspect(conn).has_table(t): conn.execute(sa.text(f'create table base_{t} as table {t}'))
            else:
                conn.execute(sa.text(f'drop table if exists {t}'))
                conn.execute(sa.text(f'create table {t} as table base_{t}'))
    engine.dispose()


if __name__ == '__main__':
    sys.exit(main())
