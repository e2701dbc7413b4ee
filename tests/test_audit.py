"""The chain of nights: three nights written as the runner writes them (files, then run.json with the chain fields,
its copy in the state database, then sealed), verified untouched, then tampered with in each way the chain must name:
a file edited, deleted or added, a run.json edited, a night removed or run again, a registry row edited or deleted,
an event deleted. Each tamper is asserted by night and item, so a check that stops working fails here."""
import datetime as dt, json, shutil, stat
from pathlib import Path
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from goodbad.core import write_atomic
from goodbad.store import MODELS, MODEL_EVENTS, init_state, register_model, move, update_details, save_run
from goodbad.audit import chain_record, manifest_sha256, night_files, night_versions, seal, verify_runs, verify_text

NIGHTS = ('2026-11-24', '2026-11-25', '2026-11-26')


class Chain:
    "A runs folder of three sealed nights and the state database they were recorded in, with one champion model"
    def __init__(self, root: Path):
        self.runs, self.store = root/'runs', root/'models'
        self.state = init_state(sa.create_engine(f"sqlite:///{root/'state.sqlite'}"))
        self.runs.mkdir(parents=True)
        (self.runs/'.nightly.lock').write_text('')
        self.manifests = {day: self.night(day, i) for i, day in enumerate(NIGHTS)}

    def night(self, day: str, i: int, attempt: int = 1) -> dict:
        "One night as the runner leaves it: its files, its registry moves, run.json with the chain, kept in the state, sealed"
        run_dir, run_id = self.runs/day, f'{day}.{attempt}'
        files = {'10_acquire.ipynb': json.dumps({'cells': [], 'night': day}), '10_acquire.html': f'<p>{day}</p>',
                 'index.html': f'<h1>{day}</h1>', 'kernels.log': '', 'features.json': json.dumps({'rows': 100 + i}),
                 'labels.parquet': bytes(range(i, i + 64))}
        for name, data in files.items(): write_atomic(run_dir/name, data)
        trained = None
        if i == 0:  # the first night trains a model and makes it champion: two events of its run
            model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
            trained = register_model(self.state, self.store, model, run_id=run_id, run_date=dt.date.fromisoformat(day),
                                     algorithm='logistic_regression', threshold=0.7, details={'precision': 0.91}).version
            move(self.state, trained, 'champion', 'nightly run', 'the first model', run_id)
            self.version = trained
        update_details(self.state, self.version, reports={day: str(run_dir)})  # as release does every night
        manifest = dict(run_id=run_id, run_date=day, status='succeeded', started_at=f'{day}T01:00:00+00:00',
                        finished_at=f'{day}T01:09:00+00:00', phases=[{'phase': 'acquire', 'status': 'succeeded'}],
                        trained_tonight=dict(version=trained) if trained else None, model=dict(version=self.version), canary=None)
        manifest.update(chain_record(run_dir, self.state, run_id, night_versions(manifest)))
        write_atomic(run_dir/'run.json', json.dumps(manifest, indent=2, default=str))
        save_run(self.state, manifest)
        seal(run_dir)
        return manifest

    def findings(self, **kw):
        return [(f.night, f.item) for f in verify_runs(self.runs, self.state, **kw)[1]]

    def problems(self, **kw):
        return {(f.night, f.item): f.problem for f in verify_runs(self.runs, self.state, **kw)[1]}

    def sql(self, statement):
        with self.state.begin() as conn: conn.execute(statement)


def writable(path: Path) -> Path:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return path


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path)
    yield c
    c.state.dispose()


def test_untouched_chain_holds(chain):
    nights, findings = verify_runs(chain.runs, chain.state)
    assert (nights, findings) == (list(NIGHTS), [])
    assert verify_text(nights, findings) == '3 nights checked, the chain holds'
    assert verify_runs(chain.runs) == (list(NIGHTS), [])  # without the state database too


def test_manifest_fields(chain):
    first, second = chain.manifests[NIGHTS[0]], chain.manifests[NIGHTS[1]]
    assert first['previous'] is None
    assert second['previous'] == dict(run_id=f'{NIGHTS[0]}.1', run_date=NIGHTS[0], manifest_sha256=manifest_sha256(chain.runs/NIGHTS[0]))
    assert list(first['files']) == sorted(['10_acquire.ipynb', '10_acquire.html', 'index.html', 'kernels.log', 'features.json', 'labels.parquet'])
    models = first['registry']['models']
    assert list(models) == [chain.version] and models[chain.version]['threshold'] == 0.7
    assert [(e['from_status'], e['to_status']) for e in first['registry']['events']] == [(None, 'candidate'), ('candidate', 'champion')]
    assert second['registry']['events'] == []


def test_sealed_files_are_read_only(chain):
    for day in NIGHTS:
        assert all((p.stat().st_mode & 0o222) == 0 for p in (chain.runs/day).iterdir())


def test_edited_notebook(chain):
    nb = writable(chain.runs/NIGHTS[1]/'10_acquire.ipynb')
    nb.write_text(nb.read_text().replace('"cells": []', '"cells": [{"source": "all good"}]'))
    problems = chain.problems()
    assert list(problems) == [(NIGHTS[1], '10_acquire.ipynb')]
    assert problems[(NIGHTS[1], '10_acquire.ipynb')].startswith('edited after the night was sealed')


def test_deleted_file(chain):
    (chain.runs/NIGHTS[2]/'labels.parquet').unlink()
    problems = chain.problems()
    assert list(problems) == [(NIGHTS[2], 'labels.parquet')]
    assert problems[(NIGHTS[2], 'labels.parquet')].startswith('deleted after the night was sealed')


def test_added_file(chain):
    (chain.runs/NIGHTS[0]/'extra_labels.parquet').write_bytes(b'PAR1')
    problems = chain.problems()
    assert list(problems) == [(NIGHTS[0], 'extra_labels.parquet')]
    assert problems[(NIGHTS[0], 'extra_labels.parquet')].startswith('added after the night was sealed')


def test_superseded_attempts_are_not_part_of_the_night(chain):
    old = chain.runs/NIGHTS[2]/'superseded'/f'{NIGHTS[2]}.0'
    write_atomic(old/'10_acquire.ipynb', '{}')
    assert 'superseded/' not in ''.join(night_files(chain.runs/NIGHTS[2]))
    assert chain.findings() == []


def test_edited_run_json(chain):
    manifest = writable(chain.runs/NIGHTS[1]/'run.json')
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {'status': 'failed'}, indent=2))
    problems = chain.problems()
    assert list(problems) == [(NIGHTS[1], 'run.json'), (NIGHTS[2], 'chain')]
    assert '(in status)' in problems[(NIGHTS[1], 'run.json')]
    assert 'that manifest was edited' in problems[(NIGHTS[2], 'chain')]
    assert [(f.night, f.item) for f in verify_runs(chain.runs)[1]] == [(NIGHTS[2], 'chain')]  # the chain alone finds it too


def test_edited_newest_run_json_needs_the_state(chain):
    manifest = writable(chain.runs/NIGHTS[2]/'run.json')
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {'status': 'no_model'}, indent=2))
    assert chain.findings() == [(NIGHTS[2], 'run.json')]
    assert verify_runs(chain.runs)[1] == []  # no night links to the newest: without the state database it is not found


def test_removed_middle_night(chain):
    shutil.rmtree(chain.runs/NIGHTS[1])
    problems = chain.problems()
    assert list(problems) == [(NIGHTS[1], 'run.json'), (NIGHTS[2], 'chain')]
    assert problems[(NIGHTS[1], 'run.json')].endswith('the night was removed')
    assert problems[(NIGHTS[2], 'chain')].endswith('a night was removed, inserted or re-ordered')
    assert [(f.night, f.item) for f in verify_runs(chain.runs)[1]] == [(NIGHTS[2], 'chain')]


def supersede(run_dir, run_id):
    "Move a night's attempt aside, as the runner does before running the night again; returns the night's folder"
    dest = run_dir/'superseded'/run_id
    dest.mkdir(parents=True)
    for p in list(run_dir.iterdir()):
        if p.name != 'superseded': shutil.move(str(p), dest/p.name)
    return run_dir


def test_removed_newest_night(chain):
    shutil.rmtree(chain.runs/NIGHTS[2])
    assert chain.findings() == [(NIGHTS[2], 'run.json')]


def test_past_night_run_again(chain):
    "Running an earlier night again after later nights linked to it is named as such: they follow its superseded attempt"
    run_dir = supersede(chain.runs/NIGHTS[1], f'{NIGHTS[1]}.1')
    chain.night(NIGHTS[1], 1, attempt=2)
    problems = chain.problems()
    assert list(problems) == [(NIGHTS[2], 'chain')]
    assert 'was run again as run 2026-11-25.2 after this night had linked to run 2026-11-25.1' in problems[(NIGHTS[2], 'chain')]


def test_edited_registry_threshold(chain):
    chain.sql(MODELS.update().where(MODELS.c.version == chain.version).values(threshold=0.55))
    problems = chain.problems()
    item = f'registry:{chain.version}'
    assert list(problems) == [(day, item) for day in NIGHTS]
    assert f"threshold is 0.55 in the registry but was 0.7" in problems[(NIGHTS[0], item)]


def test_edited_registry_details(chain):
    chain.sql(MODELS.update().where(MODELS.c.version == chain.version).values(details=json.dumps({'precision': 0.99})))
    assert chain.findings() == [(day, f'registry:{chain.version}') for day in NIGHTS]


def test_status_moves_and_reports_are_not_tampering(chain):
    move(chain.state, chain.version, 'retired', 'ana', 'replaced by hand')
    update_details(chain.state, chain.version, canary=dict(started=NIGHTS[2], fraction=0.1))
    assert chain.findings() == []


def test_deleted_model_row(chain):
    chain.sql(MODELS.delete().where(MODELS.c.version == chain.version))
    problems = chain.problems()
    item = f'registry:{chain.version}'
    assert list(problems) == [(day, item) for day in NIGHTS]
    assert problems[(NIGHTS[1], item)].endswith('its row was deleted')


def test_deleted_event(chain):
    first = chain.manifests[NIGHTS[0]]['registry']['events'][0]['event_id']
    chain.sql(MODEL_EVENTS.delete().where(MODEL_EVENTS.c.event_id == first))
    problems = chain.problems()
    assert list(problems) == [(NIGHTS[0], 'events')]
    assert f'event {first} ({chain.version}: new to candidate) deleted' in problems[(NIGHTS[0], 'events')]


def test_since_checks_the_first_link(chain):
    manifest = writable(chain.runs/NIGHTS[1]/'run.json')
    manifest.write_text(manifest.read_text() + '\n')
    nights, findings = verify_runs(chain.runs, chain.state, since=NIGHTS[2])
    assert nights == [NIGHTS[2]]
    assert [(f.night, f.item) for f in findings] == [(NIGHTS[2], 'chain')]
    assert verify_runs(chain.runs, chain.state, until=NIGHTS[0]) == ([NIGHTS[0]], [])


def test_nights_before_the_chain_and_a_running_night(chain):
    "Nights recorded before the chain existed are named once, not crashed on; tonight's night, still running, is left out"
    for day in ('2026-11-20', '2026-11-21'):
        write_atomic(chain.runs/day/'run.json', json.dumps(dict(run_id=f'{day}.1', run_date=day, status='succeeded')))
    write_atomic(chain.runs/'2026-11-27'/'run.json', json.dumps(dict(run_id='2026-11-27.1', run_date='2026-11-27', status='running')))
    nights, findings = verify_runs(chain.runs)
    assert nights == list(NIGHTS)
    assert [(f.night, f.item) for f in findings] == [('2026-11-20', 'chain'), (NIGHTS[0], 'chain')]  # and the first link now sees a night before it
    assert findings[0].problem.startswith('not covered by the chain: 2 nights from 2026-11-20 to 2026-11-21')
    assert verify_text(nights, findings).splitlines()[-1] == '2 problems in 2 nights (3 nights checked)'


def test_unsealed_night_after_the_chain(chain):
    write_atomic(chain.runs/'2026-11-27'/'run.json', json.dumps(dict(run_id='2026-11-27.1', run_date='2026-11-27', status='running')))
    write_atomic(chain.runs/'2026-11-28'/'run.json', json.dumps(dict(run_id='2026-11-28.1', run_date='2026-11-28', status='failed')))
    problems = {(f.night, f.item): f.problem for f in verify_runs(chain.runs)[1]}
    assert list(problems) == [('2026-11-27', 'run.json'), ('2026-11-28', 'run.json')]
    assert problems[('2026-11-27', 'run.json')].startswith('not sealed: its run.json has no record of its files (the run was cut off')


def test_damaged_run_json_is_reported_not_raised(chain):
    manifest = writable(chain.runs/NIGHTS[0]/'run.json')
    manifest.write_text('{"run_id": ')
    assert [(f.night, f.item) for f in verify_runs(chain.runs)[1]] == [(NIGHTS[0], 'run.json'), (NIGHTS[1], 'chain')]



def test_an_earlier_night_run_again_is_running_while_the_lock_names_it(chain):
    "An earlier night being run again is in progress while the runner's lock names it; once a later run took the lock, it was cut off"
    run_dir = supersede(chain.runs/NIGHTS[1], f'{NIGHTS[1]}.1')
    write_atomic(run_dir/'run.json', json.dumps(dict(run_id=f'{NIGHTS[1]}.2', run_date=NIGHTS[1], status='running')))
    (chain.runs/'.nightly.lock').write_text(f'night of {NIGHTS[1]}, pid 1, since 2026-11-27T10:00:00+00:00')
    assert [(f.night, f.item) for f in verify_runs(chain.runs)[1]] == [(NIGHTS[2], 'chain')]  # run again: named on the next night
    (chain.runs/'.nightly.lock').write_text('night of 2026-11-27, pid 2, since 2026-11-27T11:00:00+00:00')
    problems = {(f.night, f.item): f.problem for f in verify_runs(chain.runs)[1]}
    assert list(problems) == [(NIGHTS[1], 'run.json'), (NIGHTS[2], 'chain')]
    assert 'the run was cut off before its end' in problems[(NIGHTS[1], 'run.json')]
