"""The same night on the real PostgreSQL server: same data, same labels; and its password never reaches a report."""
import json
import pytest
import sqlalchemy as sa
from conftest import RUN_DATE, CUSTOMERS, Workspace, labels_of
from faults import leaks


@pytest.mark.xdist_group("night")
def test_the_night_on_postgres_gives_the_same_labels(night, pg_url, pg_schema, tmp_path):
    secret = 'not-a-real-password-7731'
    url = pg_url.replace('postgresql://postgres@', f'postgresql://postgres:{secret}@', 1)
    assert secret in url, 'the test URL is expected in the form postgresql://postgres@HOST:PORT/DB'
    query_secret, token = 'not-a-real-password-4410', 'not-a-real-token-0925'
    ws = Workspace(tmp_path / 'pg', env={'GOODBAD_MASTERDATA_URL': url, 'GOODBAD_DB_SCHEMA': pg_schema,
                                         'GOODBAD_LABELS_URL': f'{pg_url}?password={query_secret}',  # the form libpq and SQLAlchemy also accept
                                         'GOODBAD_ALERT_WEBHOOK': f'http://127.0.0.1:9/alerts?token={token}'})
    created = ws.run('masterdata', 'create', '--customers', str(CUSTOMERS), '--seed', '20261126', '--end', '2026-11-25', check=0)
    res = ws.nightly(check=0)
    m = ws.manifest()
    assert m['status'] == 'succeeded'
    assert m['settings']['masterdata_url']['value'].startswith('postgresql+psycopg://postgres:***@')
    pg = labels_of(url.replace('postgresql://', 'postgresql+psycopg://', 1), schema=pg_schema)
    lite = labels_of(f"sqlite:///{night.masterdata}")
    assert len(pg) == len(lite)
    assert [(r[0], r[1]) for r in pg] == [(r[0], r[1]) for r in lite], 'the same customers get the same labels'
    assert max(abs(a[2] - b[2]) for a, b in zip(pg, lite)) < 1e-6
    assert m['model']['threshold'] == pytest.approx(night.manifest()['model']['threshold'], abs=1e-9)
    # the passwords and the webhook's token are nowhere: not in the terminal, not in runs/, not in goodbad's state
    assert m['settings']['labels_url']['value'].endswith('?password=***')
    assert leaks(ws, [secret, query_secret, token], created.stdout, created.stderr, res.stdout, res.stderr) == []
    engine = sa.create_engine(url.replace('postgresql://', 'postgresql+psycopg://', 1))
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"select count(*) from {pg_schema}.customer_labels where label = 'good' and reasons is not null")).scalar() == 0, \
            'a good label has no reasons: NULL, never the text NaN'
    engine.dispose()
    # the auditor's questions, answered on PostgreSQL as on SQLite
    cid = next(r[0] for r in pg if r[1] == 'bad')
    w = json.loads(ws.run('why', '--customer', str(cid), '--json', check=0).stdout)
    assert (w['label'], w['night'], w['model']['version']) == ('bad', RUN_DATE, m['model']['version']) and w['reasons']
    assert w['data_fingerprint'] == m['data_fingerprint']['hash']
    assert 'identical, value for value' in ws.run('replay', RUN_DATE, '--into', str(tmp_path / 'replay'), check=0).stdout
    assert ws.run('verify', check=0).stdout.strip().endswith('the chain holds')
    assert secret not in json.dumps(w)
