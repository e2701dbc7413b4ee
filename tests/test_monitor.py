"""The feedback loop over simulated nights: drift triggers a retrain and says why, no drift no retrain, realized
precision matches a hand count, the estimate tracks it, a change of code retrains, a night without new outcomes runs."""
import datetime as dt, json
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import REPO
from nights import World
from goodbad.monitor import realized_history, previous_nights
from goodbad.train import precision_interval
from goodbad.night import Night
from goodbad.store import live_models, update_details, get_model

D1 = dt.date(2026, 5, 1)  # in the past: months of weekly nights fit before today
# The quiet world tests the monitor's machinery (drift, the estimate, the trend), not the guarantee: at 99% confidence
# the champion's threshold keeps its realized precision clear of the target, so a retrain here would come from the
# machinery. At the shipped 95%, one quiet world of 15,000 customers in twenty may hold a champion whose realized
# precision falls below the target (the guarantee's 5%); the monitor then rightly retrains (bench/decision_quality.py
# measures how often across worlds).
QUIET = {'GOODBAD_CANDIDATES': 'logistic_regression', 'GOODBAD_RETRAIN_EVERY_NIGHTS': '0', 'GOODBAD_LABEL_MATURITY_DAYS': '28',
         'GOODBAD_CONFIDENCE_LEVEL': '0.99'}


def state_of(world): return Night(D1, 'inspection', world.root, world.settings()).state


_QUIET = {}


@pytest.fixture
def quiet():
    "A world without drift, played weekly for eight nights (outcomes mature after 28 days); played once: its tests share a worker"
    if 'w' not in _QUIET:
        import tempfile, pathlib
        w = World(pathlib.Path(tempfile.mkdtemp(prefix='goodbad-quiet-')) / 'w', QUIET, REPO)
        w.create(15000, D1 - dt.timedelta(days=1))
        w.nights = []
        for i in range(8):
            if i: w.advance(7)
            w.nights.append(w.night(D1 + dt.timedelta(days=7 * i)))
        _QUIET['w'] = w
    return _QUIET['w']


@pytest.mark.xdist_group("quiet")
def test_without_drift_there_is_no_retrain(quiet):
    first, *rest = quiet.nights
    assert first.results['monitor'].reasons == ['no model is in production yet']
    for n in rest:
        assert n.results['monitor'].reasons == [], n.results['monitor'].reasons
        assert n.results['train'].winner is None and n.results['train'].message.startswith('no retrain tonight')
    assert live_models(rest[-1].state)['champion'].run_date == D1


@pytest.mark.xdist_group("quiet")
def test_realized_precision_matches_a_hand_count(quiet):
    n = quiet.nights[-1]
    counted = realized_history(n.state)
    assert len(counted.label_night.unique()) >= 3, 'the nights whose 28 days have passed are counted'
    night = counted.label_night.min()
    with n.labels_db.connect() as conn:
        hand = conn.execute(sa.text(
            "select count(*), sum(case when o.outcome = 'bad' then 1 else 0 end) from customer_labels_history h "
            "join customer_outcomes o on o.customer_id = h.customer_id "
            "where h.run_date = :d and h.label = 'bad' and o.known_on > :d and o.known_on <= :end"),
            dict(d=str(night), end=str(night + dt.timedelta(days=28)))).one()
    row = counted[counted.label_night == night].iloc[0]
    assert (row.known, row.bad) == tuple(hand) and row.known > 0


@pytest.mark.xdist_group("quiet")
def test_the_estimate_tracks_the_realized_precision_without_drift(quiet):
    n = quiet.nights[-1]
    est = {r['run_date']: r['estimate']['estimate'] for r in previous_nights(n.state, n.run_date + dt.timedelta(days=1)) if r.get('estimate')}
    real = realized_history(n.state).groupby('label_night')[['known', 'bad']].sum()
    pairs = [(est[str(d)], r.bad, r.known) for d, r in real.iterrows() if str(d) in est and r.known >= 30]
    assert pairs, 'at least one night has both an estimate and a realized precision'
    tol = n.settings.estimate_tolerance
    for e, k, m in pairs:  # a realized precision on a few dozen outcomes is itself uncertain: the estimate must fall in its interval, widened by the tolerance
        low, high = precision_interval(k, m, 0.95)
        assert low - tol <= e <= high + tol, f"estimate {e:.3f} vs realized {k / m:.3f} [{float(low):.3f}, {float(high):.3f}] on {m} outcomes: off by more than {tol}"


@pytest.mark.xdist_group("quiet")
def test_realized_precision_per_group(quiet):
    groups = realized_history(quiet.nights[-1].state, 'gender')
    assert set(groups.grp) >= {'F', 'M'} and (groups.known >= groups.bad).all()


@pytest.mark.xdist_group("quiet")
def test_the_trend_reads_back_every_night(quiet):
    from goodbad.monitor import trend_frame, plot_trend
    import matplotlib; matplotlib.use('Agg')
    n = quiet.nights[-1]
    t = trend_frame(n.state, n.run_date, n.run_dir.parent)
    assert list(t.run_date.dt.date) == [x.run_date for x in quiet.nights]
    assert t.retrain.tolist() == [True] + [False] * 7, 'a retrain on the first night only'
    assert t.champion.iloc[0] == 'none' and t.champion.iloc[1:].nunique() == 1
    assert t.estimate.iloc[1:].notna().all() and t.share_bad.iloc[1:].between(0, 1).all()
    assert t.selection_rate_ratio.notna().all() and t.precision_gap.notna().all(), 'the fairness figures of every night'
    fig = plot_trend(t, realized_history(n.state), n.settings)
    precision = fig.axes[0]
    assert precision.containers, 'the realized precision of the matured nights, with their intervals'
    assert set(precision.get_legend_handles_labels()[1]) >= {'realized (outcomes in)', 'estimated (calibrated scores)', 'target'}
    assert t.estimate_reliable.all(), 'without drift, every estimate holds'


@pytest.mark.xdist_group("quiet")
def test_a_night_with_no_new_outcomes_still_runs(quiet, tmp_path):
    import shutil
    w = World(tmp_path / 'w', quiet.env, REPO)
    shutil.copytree(quiet.root, w.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns('runs'))
    last = quiet.nights[-1].run_date
    n = w.night(last + dt.timedelta(days=1))  # nothing new arrived since last night
    assert n.results['score']['customers'] > 0 and n.results['monitor'].reasons == []


@pytest.mark.xdist_group("quiet")
def test_a_change_of_code_starts_a_retrain(quiet, tmp_path):
    import shutil
    w = World(tmp_path / 'w', quiet.env, REPO)
    shutil.copytree(quiet.root, w.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns('runs'))
    state = state_of(w)
    champ = live_models(state)['champion']
    code = champ.details['code'] | {'library_hash': 'a library that built the champion and is no more'}
    update_details(state, champ.version, code=code)
    w.advance(7)
    n = w.night(quiet.nights[-1].run_date + dt.timedelta(days=7))
    assert any(r.startswith('code changed') for r in n.results['monitor'].reasons)
    assert n.results['train'].data is not None, 'training ran'


@pytest.mark.parametrize('scenario,days', [('price_inflation', 42), ('new_market', 28), ('payment_shift', 28)])
def test_each_drift_scenario_is_noticed_and_starts_a_retrain(scenario, days, tmp_path):
    "Each scenario, `days` after it started (prices creep up: their drift takes six weeks to cross a limit)"
    w = World(tmp_path / 'w', QUIET, REPO)
    w.create(15000, D1 - dt.timedelta(days=1))
    w.night(D1)
    w.advance(days, scenario=scenario)
    n = w.night(D1 + dt.timedelta(days=days))
    mon = n.results['monitor']
    assert mon.retrain and any(r.startswith('data drift') for r in mon.reasons), mon.reasons
    assert mon.alerts and not mon.reliable, 'the drift is an alert, and the estimate is flagged as unreliable'
    assert n.results['train'].data is not None
