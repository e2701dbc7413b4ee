"""Faults a night meets, one at a time, and what must hold after each: the labels entirely last night's or tonight's,
and the next run of the same date starting and succeeding."""
import datetime as dt, tempfile, time
from pathlib import Path
import pytest
import sqlalchemy as sa
from conftest import REPO
from nights import World
from faults import Running, copy_workspace, invariants, sigkill_in_label_write
from goodbad.night import Night
from goodbad.core import GoodbadError
from goodbad.store import find_models, live_models, update_details
from goodbad.upstream import play

D = dt.date(2026, 11, 26)
ENV = {'GOODBAD_CANDIDATES': 'logistic_regression'}


@pytest.mark.xdist_group("faults")
def test_a_night_cut_off_after_training_is_run_again_to_the_end(tmp_path):
    w = World(tmp_path / 'w', ENV, REPO)
    w.create(15_000, D - dt.timedelta(days=1))
    first = Night(D, f'{D}.1', w.root / 'runs' / str(D), w.settings())
    play(first, until='evaluate')  # the attempt is killed here: its model registered, never released
    left = find_models(first.state)
    assert [m.status for m in left] == ['candidate']
    again = Night(D, f'{D}.2', w.root / 'runs' / 'again' / str(D), w.settings())
    done = play(again)
    assert done['train'].winner.version == left[0].version, 'the same data trains the same model'
    assert live_models(again.state)['champion'].version == left[0].version, 'the rerun releases it'
    assert done['score']['customers'] > 0 and done['score']['model_version'] == left[0].version
    # labels whose share of bad is far from what the champion labelled among the customers it was trained among are not published
    champ = live_models(again.state)['champion']
    update_details(again.state, champ.version, reference=champ.details['reference'] | {'share_bad': 0.002})
    third = Night(D, f'{D}.3', w.root / 'runs' / 'third' / str(D), w.settings())
    with pytest.raises(GoodbadError, match="not published and customer_labels keeps last night's"): play(third)
    with again.labels_db.connect() as conn:
        assert conn.execute(sa.text("select distinct run_id from customer_labels")).scalars().all() == [f'{D}.2']


@pytest.mark.xdist_group("night")
@pytest.mark.parametrize('value, env, why', [('2099-01-01', {}, 'is after today'),
                                             ('2026-11-28', {'GOODBAD_MAX_DATA_AGE_DAYS': '1'}, 'days after the latest sale before it (2026-11-25)')])
def test_a_run_date_far_from_the_data_is_refused_before_anything_runs(night, value, env, why):
    res = night.run('nightly', '--date', value, check=2, env=env)
    assert why in res.stderr, res.stderr
    assert not (night.runs / value).exists(), 'nothing is written for a night that was refused'


@pytest.mark.xdist_group("night")
def test_a_sqlite_master_data_that_does_not_exist_is_an_error_not_an_empty_database(night, tmp_path):
    missing = tmp_path / 'nowhere' / 'masterdata.sqlite'
    res = night.run('nightly', '--date', '2026-11-26', check=2, env={'GOODBAD_MASTERDATA_URL': f'sqlite:///{missing}'})
    assert f'the master data {missing} does not exist' in res.stderr and not missing.exists()


@pytest.mark.xdist_group("night")
def test_cli_conventions(night):
    from conftest import goodbad
    import goodbad as lib
    assert goodbad('--version', check=0).stdout.strip() == f'goodbad {lib.__version__}'
    assert 'exit status' in goodbad('--help', check=0).stdout
    assert goodbad('models', '--settings', str(night.settings), check=0).stdout.startswith('version'), '--settings after the command'
    models = __import__('json').loads(goodbad('models', '--json', '--settings', str(night.settings), check=0).stdout)
    assert models[0]['status'] == 'champion' and models[0]['events']
    res = goodbad('--settings', str(night.settings), 'models', check=2, env={'GOODBAD_PRECISON_TARGET': '0.95'})
    assert 'GOODBAD_PRECISON_TARGET is not one goodbad reads; did you mean GOODBAD_PRECISION_TARGET?' in res.stderr


def test_the_nightly_lock_holds_across_machines_through_a_postgresql_state_database(pg_url, tmp_path):
    from goodbad.core import RunError
    from goodbad.nightly import RunLock
    url = pg_url.replace('postgresql://', 'postgresql+psycopg://', 1)
    with RunLock(tmp_path / 'host-a' / 'runs', 'night of 2026-11-26 on host a', url):  # two runs folders: two machines
        with pytest.raises(RunError, match='another goodbad run holds the nightly lock in the state database'):
            with RunLock(tmp_path / 'host-b' / 'runs', 'night of 2026-11-26 on host b', url): pass
        with RunLock(tmp_path / 'host-c' / 'runs', 'a SQLite state', f"sqlite:///{tmp_path / 'state.sqlite'}"): pass  # another deployment
    with RunLock(tmp_path / 'host-b' / 'runs', 'night of 2026-11-26 on host b', url): pass  # released when the first run ended


NEXT = '2026-11-27'  # the night after the `night` fixture's


@pytest.mark.xdist_group("night")
def test_sigterm_then_sigkill_in_the_label_write_each_leave_one_whole_night_and_the_next_run_succeeds(night, tmp_path):
    """A scheduler's timeout (SIGTERM) mid-monitor, then a kill of the whole process group (SIGKILL) while the next
    attempt writes the labels, then the date again (bench/faults.py tries every phase, many times)"""
    import json, random, signal
    from goodbad.nightly import RunLock
    rng = random.Random(20261127)
    ws, good = copy_workspace(night, tmp_path / 'ws'), night.manifest()['run_id']
    day = ws.runs / NEXT
    term = Running(ws, NEXT)
    term.wait_for('] monitor ...')
    time.sleep(3)
    term.proc.send_signal(signal.SIGTERM)  # to the runner alone, as systemd's KillMode=mixed does
    assert term.finish(120) == 1, term.output
    m = json.loads((day / 'run.json').read_text())
    assert m['status'] == 'failed' and 'stopped by SIGTERM' in m['error'] and m['phases'][-1]['status'] == 'failed', m['error']
    assert m['finished_at'] and 'files' in m, 'the stopped night is still sealed into the chain'
    with RunLock(ws.runs, 'the check'): pass  # the lock was released
    assert invariants(ws, {good}, NEXT) == [], 'after the SIGTERM'  # no kernel left, labels and registry whole
    where = sigkill_in_label_write(ws, NEXT, rng)
    assert where.startswith(('label write', 'ended')) and invariants(ws, {good}, NEXT) == [], f'after a SIGKILL in {where}'
    again = ws.run('nightly', '--date', NEXT, '--json', check=0)  # the date is free again; and --json, for a machine
    out = json.loads(again.stdout)
    assert (out['run_id'], out['status'], out['exit_status']) == (f'{NEXT}.3', 'succeeded', 0) and out['report'].endswith('index.html')
    assert '[9/9] score: succeeded' in again.stderr, 'progress goes to standard error'
    assert invariants(ws, set(), NEXT) == []
    assert sorted(p.name for p in (day / 'superseded').iterdir()) == [f'{NEXT}.1', f'{NEXT}.2'], 'both stopped attempts are kept'
    assert ws.run('verify', check=0).stdout.strip().endswith('the chain holds')


def _mounted_read_only(folder):
    "Bind-mount `folder` read-only onto itself (root ignores file modes); False where mounts are not allowed"
    import subprocess
    return subprocess.run(['mount', '--bind', '-o', 'ro', str(folder), str(folder)], capture_output=True).returncode == 0


@pytest.mark.xdist_group("night")
def test_state_database_runs_folder_and_master_data_faults_at_start_exit_2_and_keep_the_good_night(night, tmp_path):
    import os, subprocess
    from conftest import RUN_DATE
    ws = copy_workspace(night, tmp_path / 'ws')
    good = (ws.runs / RUN_DATE / 'run.json').read_bytes()
    def refused(why, env=None):
        res = ws.nightly(RUN_DATE, check=2, env=env)
        assert why in res.stderr and 'Traceback' not in res.stderr, res.stderr
        assert (ws.runs / RUN_DATE / 'run.json').read_bytes() == good and not (ws.runs / RUN_DATE / 'superseded').exists(), 'the good night stays'
        return res.stderr
    # the state database unreachable (nothing listens on port 9), then truncated, then lost
    said = refused('the state database postgresql+psycopg://postgres:***@127.0.0.1:9/goodbad cannot be reached for the nightly lock',
                   {'GOODBAD_STATE_URL': 'postgresql://postgres:hunter2@127.0.0.1:9/goodbad'})
    assert 'hunter2' not in said
    state = ws.root / 'state' / 'goodbad.sqlite'
    kept = state.read_bytes()
    state.write_bytes(kept[:len(kept) // 3])
    assert 'restore it from its backup' in refused('goodbad.sqlite cannot be used (')  # 'file is not a database', or 'malformed'
    state.unlink()
    refused(f'does not know the latest night of the runs folder, {RUN_DATE}')
    state.write_bytes(kept)
    # the master data unreachable at start
    refused('the master data postgresql+psycopg://postgres@127.0.0.1:9/md cannot be read', {'GOODBAD_MASTERDATA_URL': 'postgresql://postgres@127.0.0.1:9/md'})
    # a read-only runs folder
    if os.geteuid() == 0: assert _mounted_read_only(ws.runs), 'root could not mount the runs folder read-only'
    else: ws.runs.chmod(0o555)
    try: refused(f'the runs folder {ws.runs} cannot be written')
    finally:
        if os.geteuid() == 0: subprocess.run(['umount', str(ws.runs)], check=True)
        else: ws.runs.chmod(0o755)
    assert ws.run('verify', check=0).stdout.strip().endswith('the chain holds'), 'nothing of the record was touched'
