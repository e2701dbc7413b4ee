"""Master data as a business has it, not as goodbad's generator makes it: extra customer columns named as model inputs,
an outcome feed with one date for months of outcomes, a feed whose dates do not say when outcomes were learned, and
a feature a data scientist adds to the catalog, a ratio the policy asks for. Each is a view over synthetic master data,
and each night is played in-process through every phase, as the runner's notebooks call them. And the README's worked
example, a bank's credit-card file, taken from the README word for word and run through the command line."""
import datetime as dt, json, re, tempfile, time
from pathlib import Path
import pytest
import sqlalchemy as sa
import pandas as pd
import pyarrow.parquet as pq
from conftest import REPO, goodbad
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


@pytest.mark.parametrize('dialect', ['sqlite', 'postgresql'])
def test_a_ratio_the_policy_asks_for_is_computed_alike_on_sqlite_and_postgresql(dialect, tmp_path, request):
    "balance_unpaid/credit_limit in the database: a limit of 0 or none gives a missing value, never a division by zero"
    from goodbad.contract import contract_tables
    from goodbad.features import night_features, feature_select, scoring_population
    if dialect == 'sqlite': url, schema = f"sqlite:///{tmp_path / 'bank.sqlite'}", None
    else:
        url = request.getfixturevalue('pg_url').replace('postgresql://', 'postgresql+psycopg://', 1)
        schema = request.getfixturevalue('pg_schema')
    bank = contract_tables(schema=schema, inputs=dict(credit_limit='number'), sale_words=('statement', 'statements'),
                           ratios=[('balance_unpaid', 'credit_limit'), ('n_sales', 'credit_limit')])
    engine = sa.create_engine(url)
    bank.customers.metadata.create_all(engine)
    signup, limits = dt.date(2005, 3, 31), {1: 1000, 2: None, 3: 0, 4: 2000}  # holder 4 has no statement
    bills = [(1, 300, 100), (1, 200, 200), (2, 500, 0), (3, 100, 0)]  # (holder, bill, paid)
    with engine.begin() as c:
        c.execute(bank.customers.insert(), [dict(customer_id=i, signup_date=signup, country='TW', channel='card',
                                                 credit_limit=v) for i, v in limits.items()])
        statement = dict(sold_at=dt.datetime(2005, 9, 20), category='statement', payment_method='card',
                         payment_status='paid')
        c.execute(bank.sales.insert(), [dict(sale_id=k, customer_id=i, amount=b, paid_amount=p, **statement)
                                        for k, (i, b, p) in enumerate(bills)])
    wanted = night_features(engine, bank)
    population = scoring_population(bank, dt.date(2005, 11, 1))
    got = pd.read_sql(feature_select(bank, population, wanted), engine).set_index('customer_id')
    engine.dispose()
    nan, same = float('nan'), lambda col, values: pd.testing.assert_series_equal(
        got[col], pd.Series(values, index=got.index), check_names=False)
    same('balance_unpaid_to_credit_limit', [0.2, nan, nan, 0.0])
    same('n_sales_to_credit_limit', [0.002, nan, nan, 0.0])
    words = {f.name: f.description for f in wanted}
    assert words['balance_unpaid_to_credit_limit'] == \
        'amount billed and never paid, all statements, divided by the credit limit (customers table)'
    assert words['n_sales_to_credit_limit'] == 'statements so far, divided by the credit limit (customers table)'


EXAMPLE = '## Your own master data'  # the README's section that holds the worked example of a bank's credit-card file


def readme_block(lang: str, section=EXAMPLE) -> str:
    "The first ```lang block of the README's `section`, exactly as a user would copy it"
    text = (REPO / 'README.md').read_text().split(section, 1)[1]
    return text.split(f'```{lang}\n', 1)[1].split('```', 1)[0]


def readme_sql(section=EXAMPLE) -> list[str]:
    "The SQL statements of the README's worked example, exactly as a user would copy them"
    return [s.strip() for s in readme_block('sql', section).split(';') if s.strip()]


def readme_command(section=EXAMPLE) -> list[str]:
    "The goodbad command the README's worked example runs, as its words"
    text = (REPO / 'README.md').read_text().split(section, 1)[1]
    return re.search(r'`goodbad (nightly --date [0-9-]+)`', text).group(1).split()


def card_holders(n=5000, seed=11) -> pd.DataFrame:
    "A file of the public credit-card data set's shape: a holder per row, six monthly statements, default next month"
    import numpy as np
    rng, sig = np.random.default_rng(seed), lambda x: 1 / (1 + np.exp(-x))
    risk = rng.normal(size=n)  # hidden: a riskier holder gets a lower limit, uses more of it, pays later, defaults more
    limit = np.clip(np.round(np.exp(rng.normal(11.8 - 0.45 * risk, 0.6)) / 10_000) * 10_000, 10_000, 1_000_000)
    d = dict(id=np.arange(1, n + 1), limit_bal=limit.astype(int), sex=rng.choice([1, 2], n, p=[.4, .6]),
             education=rng.choice([1, 2, 3, 4, 5, 6], n, p=[.35, .47, .16, .01, .007, .003]),
             marriage=rng.choice([1, 2, 3], n, p=[.45, .53, .02]),
             age=np.clip(np.round(rng.gamma(9, 4, n)), 21, 79).astype(int))
    use, delay = np.clip(sig(rng.normal(-0.6 + 0.9 * risk, 0.8)), 0, 1), np.zeros(n, int)
    for k in range(6, 0, -1):  # April (6) to September (1): a holder late stays late, one month more each time, or pays
        u, slip, cure = rng.random(n), sig(-3.2 + 1.5 * risk), sig(0.9 - 0.9 * risk)
        late = np.where(u < slip, rng.choice([1, 2], n, p=[.4, .6]), 0)
        delay = np.where(delay > 0, np.where(u < cure, 0, np.minimum(delay + 1, 8)), late)
        use = np.clip(use + rng.normal(0.02 * (delay > 0), 0.05, n), 0, 1.1)
        idle = (delay == 0) & (rng.random(n) < 0.08)  # -2: no use of the card this month
        duly = (delay == 0) & ~idle & (rng.random(n) < sig(-1.2 - 0.8 * risk))  # -1: paid in full; 0: revolving
        status = np.where(delay > 0, delay, np.where(idle, -2, np.where(duly, -1, 0)))
        bill = np.where(idle, 0, np.round(use * limit * rng.uniform(0.85, 1.0, n)))
        bill = np.where(rng.random(n) < 0.02, -np.round(rng.uniform(10, 2000, n)), bill)  # a credit to the holder
        paid = np.where(status == -1, 1.0, np.where(status == 0, rng.uniform(0.03, 0.2, n), rng.uniform(0, 0.1, n)))
        d['pay_0' if k == 1 else f'pay_{k}'], d[f'bill_amt{k}'] = status, bill.astype(int)
        d[f'pay_amt{k}'] = np.round(np.clip(bill, 0, None) * paid).astype(int)
    late_now = d['pay_0']
    odds = -2.1 + 0.7 * risk + 1.2 * (late_now >= 1) + 0.9 * (late_now >= 2) + 0.8 * use
    d['default_next_month'] = (rng.random(n) < sig(odds)).astype(int)
    return pd.DataFrame(d)


def bank_database(pg_url: str, schema: str, holders) -> None:
    "The bank's table uci_credit holding `holders`, and the README's views over it, in the PostgreSQL `schema`"
    engine = sa.create_engine(pg_url.replace('postgresql://', 'postgresql+psycopg://', 1))
    holders.to_sql('uci_credit', engine, schema=schema, index=False)
    with engine.begin() as c:
        c.exec_driver_sql(f'set local search_path to {schema}')
        for stmt in readme_sql(): c.exec_driver_sql(stmt)
    engine.dispose()


def test_a_card_file_mapped_as_the_readme_shows_reaches_its_bank_columns(pg_url, pg_schema, tmp_path):
    "The README's views and policy over a table of the card data set's shape on PostgreSQL, its phases run in-process"
    holders = card_holders()
    bank_database(pg_url, pg_schema, holders)
    (tmp_path / 'settings.ini').write_text(readme_block('ini'))
    from goodbad.settings import load_settings
    env = dict(MASTERDATA_URL=pg_url, DB_SCHEMA=pg_schema, CANDIDATES='logistic_regression')
    settings = load_settings(tmp_path / 'settings.ini', environ={f'GOODBAD_{k}': v for k, v in env.items()})
    day = dt.date(2005, 11, 1)
    n = night_through(Night(day, f'{day}.1', tmp_path / 'runs' / str(day), settings))
    champ = live_models(n.state)['champion']
    assert champ is not None, (n.results['train'].message, n.results['release'].actions if 'release' in n.results else 'no release')
    said = {'credit_limit', 'education', 'paid_share_month_2', 'late_or_unpaid_month_2', 'amount_mean_to_credit_limit'}
    assert said <= set(champ.details['features'])
    assert n.results['train'].data.split == 'random', 'one known_on for every outcome: a random hold-out'
    assert n.results['score']['customers'] == len(holders)
    bad = [r for r in labels(n) if r.label == 'bad']
    assert bad and any('credit limit (customers table)' in r.reasons for r in bad), 'the reasons speak of the bank\'s credit limit'


def test_the_readme_card_example_runs_verbatim_through_the_command_line(pg_url, pg_schema, tmp_path):
    "The README's worked example as a user runs it: its views and policy word for word, then its command, in a folder"
    holders = card_holders()
    bank_database(pg_url, pg_schema, holders)
    (tmp_path / 'settings.ini').write_text(readme_block('ini'))  # nothing added: the environment names the database
    env = {'GOODBAD_MASTERDATA_URL': pg_url, 'GOODBAD_DB_SCHEMA': pg_schema}
    t0, command = time.perf_counter(), readme_command()
    res = goodbad(*command, env=env, cwd=tmp_path)
    took = time.perf_counter() - t0
    assert res.returncode == 0, f"exited {res.returncode} after {took:.0f}s\n{res.stdout}\n{res.stderr[-6000:]}"
    run = tmp_path / 'runs' / command[-1]
    assert json.loads((run / 'run.json').read_text())['status'] == 'succeeded'
    champ = live_models(sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'goodbad.sqlite'}"))['champion']
    promise = champ.details['guarantee'] if champ else {}
    assert (promise.get('target'), promise.get('confidence')) == (0.70, 0.95), "released at the README's target"
    # what the README says of this example
    said = {'credit_limit', 'education', 'amount_mean_to_credit_limit', 'paid_share', 'balance_unpaid',
            'paid_share_month_2', 'paid_share_month_3', *[f'late_or_unpaid_month_{m}' for m in range(2, 7)]}
    assert said <= set(champ.details['features']), said - set(champ.details['features'])
    tonight = pq.read_table(artifact_path(run, 'features')).to_pandas()
    months = [tonight[f'late_or_unpaid_month_{m}'].any() for m in range(1, 7)]
    assert months == [False] + [True] * 5, "September's statement, 42 days before the night, is in month 2"
    assert tonight.amount_mean_to_credit_limit.between(0, 1.2).mean() > 0.95, 'the share of the limit a holder uses'
    part = pq.read_table(artifact_path(run, 'labelled')).to_pandas().groupby('part').bad.agg(['size', 'mean'])
    assert part.loc['holdout', 'size'] == 0.4 * len(holders), 'a random 40%'
    assert abs(part['mean'].diff().iloc[-1]) < 0.01, 'stratified: the same share of defaults on each side'
    engine = sa.create_engine(pg_url.replace('postgresql://', 'postgresql+psycopg://', 1))
    with engine.connect() as c:
        rows = c.execute(sa.text(f"select label, reasons from {pg_schema}.customer_labels")).all()
    engine.dispose()
    bad = [r.reasons for r in rows if r.label == 'bad']
    assert len(rows) == len(holders) and bad, 'every holder labelled'
    assert not any('purchase' in r for r in bad), 'in the bank\'s words'
    pages = {p.name: p.read_text().lower() for p in run.glob('*.html')}
    assert len(pages) == 10 and not [name for name, page in pages.items() if 'purchase' in page], 'every page too'
    assert sum('statement' in r for r in bad) > len(bad) / 2, bad[:5]
    assert sum('credit limit (customers table)' in r for r in bad) > len(bad) / 2, bad[:5]
