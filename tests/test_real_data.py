"""Master data as a business has it, not as goodbad's generator makes it: extra customer columns named as model inputs,
an outcome feed with one date for months of outcomes, a feed whose dates do not say when outcomes were learned, and
a feature a data scientist adds to the catalog. Each is a view over synthetic master data, and each night is played
in-process through every phase, as the runner's notebooks call them."""
import datetime as dt, shutil, tempfile
from pathlib import Path
import pytest
import sqlalchemy as sa
import pyarrow.parquet as pq
from conftest import REPO
from nights import World, STEPS, no_model_after
from goodbad import features
from goodbad.features import Feature
from goodbad.night import Night
from goodbad.store import live_models
from goodbad.artifacts import read_artifact, artifact_path

D = dt.date(2026, 11, 26)
ENV = {'GOODBAD_CANDIDATES': 'logistic_regression'}  # one algorithm keeps these nights quick; the data is what is tested
_WORLD = {}


@pytest.fixture
def world():
    "25,000 synthetic customers up to the night before D, with views presenting them as a business might; built once"
    if 'w' not in _WORLD:
        w = World(Path(tempfile.mkdtemp(prefix='goodbad-realdata-')) / 'w', ENV, REPO)
        w.create(25_000, D - dt.timedelta(days=1))
        with sa.create_engine(f"sqlite:///{w.root / 'data' / 'masterdata.sqlite'}").begin() as c:
            # a bank's own columns beside the contract's: a credit limit (lower for riskier customers, some unknown) and a product
            c.exec_driver_sql("create view customers_plus as select c.*, case when c.customer_id % 25 = 0 then null "
                              "else round(20000 * exp(-t.risk)) end as credit_limit, case when t.risk > 1 then 'basic' else 'premium' end "
                              "as product from customers c join goodbad_synthetic_truth t on t.customer_id = c.customer_id")
            # a feed loaded at one go: five months of outcomes, all dated the day of the load
            c.exec_driver_sql("create view outcomes_one_date as select customer_id, outcome, '2026-11-25' as known_on "
                              "from customer_outcomes where known_on >= '2026-06-25'")
            # a feed whose dates are 240 days after the business learned each outcome (when they were keyed in, say)
            c.exec_driver_sql("create view outcomes_keyed_late as select customer_id, outcome, date(known_on, '+240 days') as known_on "
                              "from customer_outcomes where date(known_on, '+240 days') < '2026-11-26'")
        _WORLD['w'] = w
    return _WORLD['w']


def play(w, name, day=D, **overrides):
    "Play one night in a corner of the world of its own (state, models, runs, labels tables), under the policy with `overrides`"
    own = w.root / name
    paths = dict(state_default=own / 'state.sqlite', model_store=own / 'models', runs_dir=own / 'runs',
                 labels_table=f'labels_{name}', labels_history_table=f'labels_history_{name}')
    return night_through(Night(day, f'{day}.1', own / 'runs' / str(day), w.settings(**paths, **overrides)))


def night_through(n):
    "Every phase in the runner's order, stopping where the runner would when there is no model to go on with"
    n.results = {}
    for phase, step in STEPS.items():
        n.results[phase] = step(n)
        if no_model_after(phase, n): break
    return n


def labels(n):
    t = sa.Table(n.settings.labels_table, sa.MetaData(schema=n.settings.db_schema or None), autoload_with=n.labels_db)
    with n.labels_db.connect() as c: return c.execute(sa.select(t.c.customer_id, t.c.label, t.c.reasons)).all()


@pytest.mark.xdist_group("realdata")
def test_customer_columns_named_as_inputs_reach_the_model_and_the_reasons(world):
    n = play(world, 'inputs', customers_table='customers_plus', customer_numbers='credit_limit', customer_categories='product')
    champ = live_models(n.state)['champion']
    assert champ is not None, n.results['train'].message
    assert {'credit_limit', 'product'} <= set(champ.details['features'])
    assert {'credit_limit', 'product'} <= set(champ.details['reference']['features']), 'the monitor will watch them'
    assert read_artifact(n.run_dir, 'snapshot')['tables']['customers']['missing_inputs']['credit_limit'] == 1000, 'their missing values are counted'
    bad = [r for r in labels(n) if r.label == 'bad']
    assert bad and sum('credit limit (customers table)' in r.reasons for r in bad) > len(bad) / 2, 'the reasons name the bank\'s column'


@pytest.mark.xdist_group("realdata")
def test_an_outcome_feed_with_one_date_trains_on_a_random_hold_out(world):
    n = play(world, 'onedate', outcomes_table='outcomes_one_date')
    t = n.results['train']
    assert t.data.split == 'random' and 'time cannot set the most recent' in t.data.note
    assert t.winner is not None and t.guarantee.holds, t.message
    assert live_models(n.state)['champion'].version == t.winner.version


@pytest.mark.xdist_group("realdata")
def test_a_feed_dated_after_the_outcomes_were_learned_is_caught_as_skew(world):
    n = play(world, 'late', outcomes_table='outcomes_keyed_late')
    new = n.results['train'].winner
    assert new is not None, n.results['train'].message
    gates = n.results['release'].gates[new.version].set_index('gate')
    skew = gates.loc['training and scoring describe customers alike']
    assert not skew.passed and 'Check the dates of the outcome feed' in skew.figure and 'tenure_days' in skew.figure
    assert live_models(n.state)['champion'] is None, 'the skewed model labels no one'


@pytest.mark.xdist_group("realdata")
def test_a_feature_added_to_the_catalog_flows_through_training_scoring_drift_and_explanations(world):
    new = Feature('share_electronics_invoice_90d', "share of the last 90 days' purchases that were electronics bought on invoice",
                  lambda t: t.share((t.sale.category == 'electronics') & (t.sale.payment_method == 'invoice'), within=90), unit='share')
    features.CATALOG.append(new)
    try:
        first = play(world, 'catalog')
        champ = live_models(first.state)['champion']
        assert new.name in champ.details['features'] and new.name in champ.details['reference']['features']
        assert new.name in pq.read_schema(artifact_path(first.run_dir, 'features')).names, 'scoring computed it'
        assert new.name in first.results['explain'].importance().index, 'the explanations include it'
        second = play(world, 'catalog', day=D + dt.timedelta(days=1))  # the next night monitors the champion
        assert new.name in set(second.results['monitor'].drift.feature), 'its drift is watched'
    finally:
        features.CATALOG.remove(new)


def readme_sql(section='## Your own master data') -> list[str]:
    "The SQL statements of the README's worked example, exactly as a user would copy them"
    text = (REPO / 'README.md').read_text().split(section, 1)[1]
    block = text.split('```sql', 1)[1].split('```', 1)[0]
    return [s.strip() for s in block.split(';') if s.strip()]


def card_file(n=6000, seed=7) -> 'pd.DataFrame':
    "A file of the public credit-card data set's shape: a holder per row, six monthly statements, default next month"
    import numpy as np, pandas as pd
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    sig = lambda x: 1 / (1 + np.exp(-x))
    d = dict(id=np.arange(1, n + 1), limit_bal=(np.round(np.exp(np.log(150_000) - 0.6 * risk + rng.normal(0, .4, n)) / 10_000) * 10_000 + 10_000).astype(int),
             sex=rng.choice([1, 2], n), education=rng.choice([1, 2, 3, 4], n, p=[.35, .45, .15, .05]), marriage=rng.choice([1, 2, 3], n),
             age=rng.integers(21, 70, n))
    for k, col in enumerate(['pay_0', 'pay_2', 'pay_3', 'pay_4', 'pay_5', 'pay_6'], 1):
        u, late = rng.random(n), sig(-2.6 + 2.0 * risk - 0.1 * k)
        d[col] = np.where(u < late * 0.5, 2, np.where(u < late, 1, rng.choice([-1, 0], n)))
        bill = np.round(np.exp(rng.normal(10, 1, n)))
        d[f'bill_amt{k}'] = np.where(rng.random(n) < 0.03, -np.round(bill * 0.05), bill).astype(int)
        d[f'pay_amt{k}'] = np.round(np.clip(d[f'bill_amt{k}'], 0, None) * np.clip(sig(1.2 - 1.3 * risk + rng.normal(0, .5, n)), 0, 1)).astype(int)
    d['default_next_month'] = (rng.random(n) < sig(-2.2 + 2.6 * risk)).astype(int)
    return pd.DataFrame(d)


def test_a_card_file_mapped_as_the_readme_shows_reaches_its_bank_columns(pg_url, pg_schema, tmp_path):
    "The README's views over a table of the credit-card data set's shape, on PostgreSQL, with the README's policy"
    engine = sa.create_engine(pg_url.replace('postgresql://', 'postgresql+psycopg://', 1))
    card_file().to_sql('uci_credit', engine, schema=pg_schema, index=False)
    with engine.begin() as c:
        c.exec_driver_sql(f'set local search_path to {pg_schema}')
        for stmt in readme_sql(): c.exec_driver_sql(stmt)
    engine.dispose()
    shutil.copy(REPO / 'settings.ini', tmp_path / 'settings.ini')
    policy = dict(MASTERDATA_URL=pg_url, DB_SCHEMA=pg_schema, CUSTOMERS_TABLE='card_customers', SALES_TABLE='card_statements',
                  OUTCOMES_TABLE='card_defaults', PRECISION_TARGET='0.70', PREDICTION_HORIZON_DAYS='7', CUSTOMER_NUMBERS='credit_limit',
                  CUSTOMER_CATEGORIES='education', FAIRNESS_ATTRIBUTES='gender, age_band', CANDIDATES='logistic_regression')
    from goodbad.settings import load_settings
    settings = load_settings(tmp_path / 'settings.ini', environ={f'GOODBAD_{k}': v for k, v in policy.items()})
    day = dt.date(2005, 11, 1)
    n = night_through(Night(day, f'{day}.1', tmp_path / 'runs' / str(day), settings))
    champ = live_models(n.state)['champion']
    assert champ is not None, (n.results['train'].message, n.results['release'].actions if 'release' in n.results else 'no release')
    assert {'credit_limit', 'education', 'paid_share_month_1', 'late_or_unpaid_month_2'} <= set(champ.details['features'])
    assert n.results['train'].data.split == 'random', 'one known_on for every outcome: a random hold-out'
    assert n.results['score']['customers'] == 6000
    bad = [r for r in labels(n) if r.label == 'bad']
    assert bad and any('credit limit (customers table)' in r.reasons for r in bad), 'the reasons speak of the bank\'s credit limit'
