"""The release path over several nights: a first champion, a challenger approved, in canary, promoted; a canary rolled
back; a challenger over a fairness limit that never goes live; a tampered artifact refused; approval of an unknown
version refused. On SQLite and on the real PostgreSQL server."""
import datetime as dt, shutil
import pytest
import sqlalchemy as sa
from goodbad.contract import settings_labels_tables
from conftest import REPO
from nights import World
from goodbad import cli
from goodbad.core import ModelStoreError
from goodbad.store import find_models, live_models, model_events, get_model, load_model

D1 = dt.date(2026, 7, 1)  # nights in the past: a night is never run on data dated after tomorrow
WEEK = 7  # nights a week apart
# one candidate, a canary of one night promoted on proxies (no outcome of its labels can mature in a week; the canary's
# outcomes path is tests/test_canary.py's), and a retrain every night (the schedule), so that each night brings a challenger
FAST = {'GOODBAD_CANDIDATES': 'logistic_regression', 'GOODBAD_CANARY_NIGHTS': '1', 'GOODBAD_CANARY_PROMOTES_ON': 'proxies',
        'GOODBAD_DEMO_CUSTOMERS': '15000', 'GOODBAD_RETRAIN_EVERY_NIGHTS': '1'}


def approve(world, version, *, by='ana', expect=0, capsys=None, monkeypatch=None):
    for k, v in world.env.items(): monkeypatch.setenv(k, v)
    code = cli.main(['--settings', str(world.root / 'settings.ini'), 'approve', version, '--by', by, '--note', 'looked at the reports'])
    assert code == expect
    return capsys.readouterr()


def labels(night):
    current, _, _ = settings_labels_tables(night.settings)
    with night.labels_db.connect() as conn:
        return conn.execute(sa.select(current.c.model_version, current.c.model_role, sa.func.count(),
                                      sa.func.sum(sa.case((current.c.label == 'bad', 1), else_=0)),
                                      sa.func.sum(sa.case(((current.c.label == 'bad') & current.c.reasons.is_not(None), 1), else_=0)))
                            .group_by(current.c.model_version, current.c.model_role)).all()


def status(night, version): return get_model(night.state, version).status


def state_of(world):
    "goodbad's state database of a world"
    from goodbad.night import Night
    return Night(D1, 'inspection', world.root, world.settings()).state


class Calendar:
    "Weekly nights from D1, the master data advanced a week before each night after the first"
    def __init__(self, world): self.world, self.day = world, None

    def next(self, **overrides):
        if self.day is None: self.day = D1
        else: self.world.advance(WEEK); self.day += dt.timedelta(days=WEEK)
        return self.world.night(self.day, **overrides)

    def until_a_challenger_waits(self, tries=4):
        "Nights until one ends with a new challenger waiting (a retrained model may fail its hold-out gate on a given night)"
        for _ in range(tries):
            n = self.next()
            if n.results['release'].waiting: return n, get_model(n.state, n.results['release'].waiting[0])
        raise AssertionError(f"no challenger passed the gates in {tries} nights")


def play_release_path(world, capsys, monkeypatch):
    "A first champion; a challenger approved, in canary, promoted; the next one approved, in canary, rolled back"
    world.create(15000, D1 - dt.timedelta(days=1))
    nights = Calendar(world)
    n1 = nights.next()
    first = live_models(n1.state)['champion']
    assert first is not None and any('first model' in a for a in n1.results['release'].actions)

    n2, a = nights.until_a_challenger_waits()
    assert live_models(n2.state)['champion'].version == first.version, 'a challenger labels no one before approval'
    out = approve(world, a.version, capsys=capsys, monkeypatch=monkeypatch)
    assert f"{a.version} is approved by ana" in out.out

    n3 = nights.next()
    assert live_models(n3.state)['canary'].version == a.version
    rows = {(v, role): (n, bad, why) for v, role, n, bad, why in labels(n3)}
    assert set(rows) == {(first.version, 'champion'), (a.version, 'canary')}
    share = rows[(a.version, 'canary')][0] / sum(r[0] for r in rows.values())
    assert 0.07 < share < 0.13, f"the canary labels about 10% of customers, not {share:.1%}"
    assert all(bad == why for _, bad, why in rows.values()), 'every bad label has its reasons'

    n4 = nights.next()
    assert status(n4, a.version) == 'champion' and status(n4, first.version) == 'retired'
    assert 'promoted on proxies, not outcomes' in model_events(n4.state, a.version)[-1]['note']
    assert [e['to_status'] for e in model_events(n4.state, a.version)] == ['candidate', 'challenger', 'approved', 'canary', 'champion']
    assert [e['by'] for e in model_events(n4.state, a.version)][2] == 'ana'

    n5, b = nights.until_a_challenger_waits() if not n4.results['release'].waiting else (n4, get_model(n4.state, n4.results['release'].waiting[0]))
    approve(world, b.version, capsys=capsys, monkeypatch=monkeypatch)
    n6 = nights.next()
    assert live_models(n6.state)['canary'].version == b.version

    n7 = nights.next(precision_target=0.999)  # the policy tightens: the canary fails its check
    assert status(n7, b.version) == 'rolled_back' and status(n7, a.version) == 'champion'
    assert any('rolled back' in x for x in n7.results['release'].actions)
    assert {(v, role) for v, role, *_ in labels(n7)} == {(a.version, 'champion')}
    return n7


def test_release_path_on_sqlite(tmp_path, capsys, monkeypatch):
    play_release_path(World(tmp_path / 'w', FAST, REPO), capsys, monkeypatch)


def test_release_path_on_postgres(tmp_path, capsys, monkeypatch, pg_url, pg_schema):
    env = FAST | {'GOODBAD_MASTERDATA_URL': pg_url, 'GOODBAD_DB_SCHEMA': pg_schema}
    play_release_path(World(tmp_path / 'w', env, REPO), capsys, monkeypatch)


_FIRST = {}


@pytest.fixture
def first_night(tmp_path_factory):
    "A world after its first night (a champion in production), to branch from (played once: its tests share a worker)"
    if 'world' not in _FIRST:
        w = World(tmp_path_factory.mktemp('first') / 'w', FAST, REPO)
        w.create(15000, D1 - dt.timedelta(days=1))
        w.night(D1)
        _FIRST['world'] = w
    return _FIRST['world']


def branch(world, dest):
    shutil.copytree(world.root, dest, ignore=shutil.ignore_patterns('runs'))
    return World(dest, world.env, REPO)


@pytest.mark.xdist_group("first")
def test_a_challenger_the_fairness_check_blocks_never_goes_live(first_night, tmp_path):
    "No group large enough to judge: the check cannot be made, and a policy of when_cannot_judge = block blocks"
    w = branch(first_night, tmp_path / 'w')
    w.advance(WEEK)
    n = w.night(D1 + dt.timedelta(days=WEEK), min_group_size=100_000, when_cannot_judge='block')
    new = n.results['train'].winner
    gates = n.results['release'].gates[new.version].set_index('gate')
    assert not gates.loc['fairness limits', 'passed'] and set(n.results['fairness'].verdicts.verdict) == {'cannot judge'}
    assert 'cannot judge' in gates.loc['fairness limits', 'figure']
    assert status(n, new.version) == 'rejected'
    assert 'fairness limits' in model_events(n.state, new.version)[-1]['note']
    assert new.version not in {v for v, *_ in labels(n)}, 'it never labels anyone'


@pytest.mark.xdist_group("first")
def test_approving_an_unknown_version_is_refused(first_night, capsys, monkeypatch):
    out = approve(first_night, '20261126-no-such-model', expect=2, capsys=capsys, monkeypatch=monkeypatch)
    assert "there is no model version '20261126-no-such-model'" in out.err and 'goodbad models' in out.err
    assert len(find_models(state_of(first_night), status='champion')) == 1, 'production is as it was'


@pytest.mark.xdist_group("first")
def test_approving_the_champion_is_refused(first_night, capsys, monkeypatch):
    champ = live_models(state_of(first_night))['champion']
    out = approve(first_night, champ.version, expect=2, capsys=capsys, monkeypatch=monkeypatch)
    assert f"model {champ.version} is champion; only a model that is challenger can become approved" in out.err


@pytest.mark.xdist_group("first")
def test_a_tampered_artifact_is_refused_and_labels_stay(first_night, tmp_path):
    w = branch(first_night, tmp_path / 'w')
    from goodbad.night import Night
    n0 = Night(D1, 'x', w.root, w.settings())
    champ = live_models(n0.state)['champion']
    before = labels(n0)
    path = n0.model_store / champ.artifact
    path.write_bytes(path.read_bytes().replace(b'LogisticRegression', b'LogisticRegressioN', 1))
    with pytest.raises(ModelStoreError, match='has changed since it was stored'):
        load_model(n0.state, n0.model_store, champ.version)
    w.advance(WEEK)
    with pytest.raises(ModelStoreError, match=f"model {champ.version}: artifact .* has changed since it was stored"):
        w.night(D1 + dt.timedelta(days=WEEK))
    assert labels(n0) == before, 'production is as it was'
