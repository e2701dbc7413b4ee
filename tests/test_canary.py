"""A canary is promoted on the evidence the policy names, never without it: on matured outcomes of the customers it
labelled bad (and not before they are in), or on named proxies; rolled back when its outcomes show a precision clearly
below the target, or a proxy fails; ended when it has not gathered its evidence in canary_max_days. A policy under
which no canary could ever gather its evidence is refused at start.

Unit-level: a small state database and a few hand-written rows of labels history and outcomes, no night is played."""
import datetime as dt, shutil
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import REPO, goodbad
from goodbad.core import SettingsError
from goodbad.contract import make_engine, settings_labels_tables, ensure_labels_tables
from goodbad.night import Night
from goodbad.release import (ReleaseReport, canary_checks, canary_evidence, settle_canary, promotion_rests_on,
                             OUTCOMES_CHECK)
from goodbad.settings import load_settings
from goodbad.store import register_model, move, update_details, get_model, model_events, canary_nights_passed
from goodbad.verdict import verdict

STARTED = dt.date(2026, 3, 2)  # the night the canary started, and first labelled its slice
MATURES = STARTED + dt.timedelta(days=61)  # the first night its labels can be judged (label_maturity_days = 60)


class Canary:
    "A champion and a canary in a small state database, the canary's bad labels in the history, outcomes to add"
    def __init__(self, root, **policy):
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / 'settings.ini', root / 'settings.ini')
        self.root, self.env = root, {f'GOODBAD_{k.upper()}': str(v) for k, v in policy.items()}
        self.settings = load_settings(root / 'settings.ini', environ=self.env)
        night = self.night(STARTED)
        night.contract.outcomes.create(night.masterdata)
        ensure_labels_tables(night.labels_db, settings_labels_tables(self.settings))
        self.champion, self.canary = (
            register_model(night.state, night.model_store, {'model': name}, run_id='t', run_date=STARTED, threshold=0.5,
                           algorithm='logistic_regression', details={}).version for name in ('champion', 'canary'))
        move(night.state, self.champion, 'champion', 'test')
        for to in ('challenger', 'approved', 'canary'): move(night.state, self.canary, to, 'test')
        update_details(night.state, self.canary, canary=dict(started=STARTED.isoformat(), fraction=0.1))

    def night(self, day):
        return Night(day, f'{day}.1', self.root / 'runs' / str(day), self.settings)

    def label(self, day, customers, version=None, role='canary'):
        "`customers` labelled bad on `day` by the canary (or another model and role)"
        _, hist, _ = settings_labels_tables(self.settings)
        with self.night(day).labels_db.begin() as conn:
            conn.execute(hist.insert(), [dict(run_date=day, customer_id=c, label='bad', score=0.9, model_role=role,
                                              model_version=version or self.canary, run_id=f'{day}.1',
                                              scored_at=dt.datetime(2026, 1, 1)) for c in customers])

    def learn(self, outcomes: dict, on: dt.date):
        "The business learns each customer's outcome (customer -> 'bad' or 'good') on day `on`"
        n = self.night(on)
        with n.masterdata.begin() as conn:
            conn.execute(n.contract.outcomes.insert(),
                         [dict(customer_id=c, outcome=o, known_on=on) for c, o in outcomes.items()])

    def check(self, day, slice_labels=None, estimate=0.93, precision_high=0.97):
        "Tonight's checks of the canary and the move they call for; returns (checks, report, night)"
        n = self.night(day)
        canary, champion = get_model(n.state, self.canary), get_model(n.state, self.champion)
        figures = dict(precision=0.93, precision_high=precision_high, recall=0.5)
        evaluation = {v: dict(smoke=[dict(passed=True)] * 5, smoke_passed=True, figures=figures)
                      for v in (self.canary, self.champion)}
        canary_bad, champion_bad = slice_labels or ([True] * 9 + [False] * 91, [True] * 8 + [False] * 92)
        comparison = pd.DataFrame(dict(canary_bad=canary_bad, champion_bad=champion_bad))
        checks = canary_checks(canary, champion, evaluation, comparison, canary_evidence(n, canary),
                               dict(estimate=estimate, flagged=9), n.settings)
        rep = ReleaseReport()
        settle_canary(n, canary, champion, checks, rep)
        return checks, rep, n

    def status(self, version=None):
        return get_model(self.night(STARTED).state, version or self.canary).status


def every_night(world, first, last, **kw):
    "Check the canary each night from `first` to `last`, as long as it runs; the last night's (checks, report, night)"
    day, res = first, None
    while day <= last and world.status() == 'canary':
        res = world.check(day, **kw)
        day += dt.timedelta(days=1)
    return res


def shown(checks):
    "Each check as the page shows it: (name, result words)"
    return [(r.gate, r.result) for r in checks.itertuples()]


@pytest.fixture(params=['sqlite', 'postgres'])
def master_data(request):
    "Where the master data and the labels are: the embedded SQLite file, or a schema of the PostgreSQL server"
    if request.param == 'sqlite': return {}
    return dict(masterdata_url=request.getfixturevalue('pg_url'), db_schema=request.getfixturevalue('pg_schema'))


def test_the_evidence_is_the_canarys_own_matured_outcomes(tmp_path, master_data):
    w = Canary(tmp_path / 'w', **master_data)
    w.label(STARTED, range(1, 31))
    w.label(STARTED + dt.timedelta(days=1), range(1, 31))             # the same customers again: each counts once
    w.label(STARTED, range(100, 140), version=w.champion, role='champion')  # the champion's labels are not its evidence
    w.learn({c: 'bad' for c in range(1, 21)} | {c: 'bad' for c in range(100, 140)}, STARTED + dt.timedelta(days=30))
    w.learn({c: 'good' for c in range(21, 26)}, STARTED + dt.timedelta(days=90))  # after both windows
    before = canary_evidence(w.night(MATURES - dt.timedelta(days=1)), get_model(w.night(STARTED).state, w.canary))
    assert (before['outcomes'], before['matured_bad'], before['labelled_bad']) == (0, 0, 30), 'no night has matured yet'
    after = canary_evidence(w.night(MATURES + dt.timedelta(days=40)), get_model(w.night(STARTED).state, w.canary))
    assert (after['outcomes'], after['bad'], after['matured_bad']) == (20, 20, 30)
    assert after['first_matures'] == MATURES.isoformat()


def test_promoted_on_outcomes_once_enough_have_matured_and_not_before(tmp_path):
    w = Canary(tmp_path / 'w')
    w.label(STARTED, range(1, 61))
    w.learn({c: 'bad' if c <= 54 else 'good' for c in range(1, 61)}, STARTED + dt.timedelta(days=20))  # 54 of 60
    checks, rep, n = every_night(w, STARTED + dt.timedelta(days=1), MATURES - dt.timedelta(days=1))
    assert w.status() == 'canary', 'outcomes are in, but the night they judge has not matured'
    assert canary_nights_passed(n.state, w.canary) == 60, 'each clean night is recorded'
    assert shown(checks)[-1][1] == 'waiting for evidence (0 of 50 outcomes)'
    assert checks.passed.iloc[-1] is None and 'True' not in str(checks.passed.iloc[-1])
    assert 'none of its labels has matured yet' in checks.figure.iloc[-1]
    assert rep.actions[0].endswith(f"canary night 60 passed; {OUTCOMES_CHECK}: waiting for evidence (0 of 50 outcomes), "
                                   "day 60 of at most 180")
    checks, rep, n = w.check(MATURES)
    assert w.status() == 'champion' and w.status(w.champion) == 'retired'
    assert checks.result.tolist() == ['pass'] * 4 and checks.figure.iloc[-1].startswith('54 of 60 bad: 0.900')
    note = model_events(n.state, w.canary)[-1]['note']
    assert note.startswith('61 clean canary nights; promoted on outcomes (54 of 60 bad'), note


def test_rolled_back_when_its_outcomes_show_precision_clearly_below_the_target(tmp_path):
    w = Canary(tmp_path / 'w')
    w.label(STARTED, range(1, 61))
    w.learn({c: 'bad' if c <= 42 else 'good' for c in range(1, 61)}, STARTED + dt.timedelta(days=20))  # 0.70: up to 0.81
    checks, rep, n = w.check(MATURES)
    assert w.status() == 'rolled_back' and w.status(w.champion) == 'champion'
    assert shown(checks)[-1][1] == 'FAIL' and checks.figure.iloc[-1].startswith('42 of 60 bad: 0.700')
    assert f"canary check failed: {OUTCOMES_CHECK}" in model_events(n.state, w.canary)[-1]['note']
    assert 'labels everyone again' in rep.actions[0]


def test_few_outcomes_keep_it_waiting_and_the_maximum_ends_it(tmp_path):
    w = Canary(tmp_path / 'w')
    w.label(STARTED, range(1, 61))
    w.learn({c: 'bad' for c in range(1, 31)}, STARTED + dt.timedelta(days=20))  # 30 outcomes: fewer than 50
    checks, rep, n = w.check(MATURES + dt.timedelta(days=50))
    assert w.status() == 'canary' and shown(checks)[-1][1] == 'waiting for evidence (30 of 50 outcomes)'
    checks, rep, n = w.check(STARTED + dt.timedelta(days=180))
    assert w.status() == 'rolled_back'
    note = model_events(n.state, w.canary)[-1]['note']
    assert note.startswith('no evidence after 180 days (canary_max_days = 180)') and '(30 of 50 outcomes)' in note, note


def test_promoted_on_proxies_says_so(tmp_path):
    w = Canary(tmp_path / 'w', canary_promotes_on='proxies')
    checks, rep, n = every_night(w, STARTED + dt.timedelta(days=1), STARTED + dt.timedelta(days=5))
    assert w.status() == 'champion' and n.run_date == STARTED + dt.timedelta(days=3), 'after canary_nights = 3'
    assert [g for g, _ in shown(checks)][2:] == ['proxy: share labelled bad on its slice, against the champion',
                                                 'proxy: agreement with the champion on its slice',
                                                 'proxy: estimated precision on its slice (calibrated scores)']
    assert not checks.gate.str.startswith(OUTCOMES_CHECK).any(), 'no outcome row poses as evidence'
    assert checks.figure.iloc[3].startswith('0.889: both label bad 8 of the 9 either does')
    note = model_events(n.state, w.canary)[-1]['note']
    assert note.startswith('3 clean canary nights; promoted on proxies, not outcomes (share labelled bad'), note
    words = promotion_rests_on(n.settings)
    assert words.startswith('proxies, not outcomes: share labelled bad, agreement with the champion and estimated')
    page = verdict('Promoted.', [dict(figure=r.gate, value=r.figure, limit=r.limit, passed=r.passed, result=r.result)
                                 for r in checks.itertuples()])
    assert [r[3] for r in page.rows()] == ['pass'] * 5
    assert 'proxy: agreement with the champion on its slice' in repr(page)


@pytest.mark.parametrize('failing', ['agreement', 'estimate'])
def test_a_proxy_that_fails_rolls_it_back(tmp_path, failing):
    w = Canary(tmp_path / 'w', canary_promotes_on='proxies')
    apart = ([True] * 9 + [False] * 91, [False] * 9 + [True] * 9 + [False] * 82)  # the same share, other customers
    fault = dict(slice_labels=apart) if failing == 'agreement' else dict(estimate=0.86)
    checks, rep, n = w.check(STARTED + dt.timedelta(days=1), **fault)
    assert w.status() == 'rolled_back'
    failed = checks[checks.result == 'FAIL'].gate.tolist()
    assert failed == (['proxy: agreement with the champion on its slice'] if failing == 'agreement' else
                      ['proxy: estimated precision on its slice (calibrated scores)'])
    assert model_events(n.state, w.canary)[-1]['note'] == f"canary check failed: {failed[0]}"


def test_a_policy_whose_canary_could_never_gather_its_evidence_is_refused_at_start(tmp_path):
    shutil.copy(REPO / 'settings.ini', tmp_path / 'settings.ini')
    text = (tmp_path / 'settings.ini').read_text().replace('canary_max_days = 180', 'canary_max_days = 60')
    (tmp_path / 'settings.ini').write_text(text)
    line = text.splitlines().index('canary_max_days = 60') + 1
    maturity = text.splitlines().index('label_maturity_days = 60') + 1
    expected = (f"[release] canary_max_days = 60 (settings.ini line {line}) is not more than [monitor] "
                f"label_maturity_days = 60 (settings.ini line {maturity})")
    with pytest.raises(SettingsError, match=r'canary_promotes_on = proxies\.$') as e:
        load_settings(tmp_path / 'settings.ini', environ={})
    assert str(e.value).startswith(expected) and 'Raise canary_max_days above 60' in str(e.value)
    proxies = load_settings(tmp_path / 'settings.ini', environ={'GOODBAD_CANARY_PROMOTES_ON': 'proxies'})
    assert proxies.canary_max_days == 60, 'on proxies, no outcome needs to mature'
    res = goodbad('--settings', str(tmp_path / 'settings.ini'), 'nightly', '--date', '2026-11-26', check=2)
    assert expected in res.stderr
    assert not (tmp_path / 'runs').exists() and not (tmp_path / 'data').exists(), 'nothing is written'
    with pytest.raises(SettingsError, match=r'label_maturity_days = 200 \(environment GOODBAD_LABEL_MATURITY_DAYS\)'):
        load_settings(tmp_path / 'settings.ini',
                      environ={'GOODBAD_CANARY_MAX_DAYS': '180', 'GOODBAD_LABEL_MATURITY_DAYS': '200'})
