"""A bad operating policy stops the run at its start, with the key, the value, where it came from and what is allowed."""
import pytest
from conftest import RUN_DATE, Workspace, labels_of


@pytest.fixture
def ws(night, tmp_path):
    return night.copy(tmp_path / 'ws')


def _refused(ws, res, *expected):
    assert res.returncode == 2, res.stdout + res.stderr
    for e in expected: assert e in res.stderr, f"{e!r} not in {res.stderr!r}"
    assert not (ws.runs / RUN_DATE).exists(), 'nothing is written'


@pytest.mark.xdist_group("night")
def test_a_target_out_of_range(ws):
    before = labels_of(f"sqlite:///{ws.masterdata}")
    res = ws.nightly(check=None, env={'GOODBAD_PRECISION_TARGET': '1.7'})
    _refused(ws, res, "precision.precision_target = '1.7' (environment GOODBAD_PRECISION_TARGET) is not allowed: it must be a number from 0.5 to 0.999")
    assert labels_of(f"sqlite:///{ws.masterdata}") == before


@pytest.mark.xdist_group("night")
def test_an_unknown_key(ws):
    text = ws.settings.read_text().replace('min_recall = 0.05', 'min_recall = 0.05\nmin_recal = 0.1')
    ws.settings.write_text(text)
    _refused(ws, ws.nightly(check=None), "unknown key 'min_recal' in [precision]. Did you mean min_recall")


@pytest.mark.xdist_group("night")
def test_a_malformed_database_url_is_refused_and_its_password_not_shown(ws):
    res = ws.nightly(check=None, env={'GOODBAD_MASTERDATA_URL': 'postgresql://scott:tiger@db.example:port/sales'})
    _refused(ws, res, 'environment variable GOODBAD_MASTERDATA_URL holds', 'which is not a database URL')
    assert 'tiger' not in res.stderr + res.stdout


@pytest.mark.xdist_group("night")
def test_an_unsupported_database(ws):
    _refused(ws, ws.nightly(check=None, env={'GOODBAD_MASTERDATA_URL': 'oracle://u@host/db'}), 'goodbad supports SQLite and PostgreSQL')


@pytest.mark.xdist_group("night")
def test_a_missing_settings_file(tmp_path):
    from conftest import goodbad
    res = goodbad('--settings', str(tmp_path / 'nope.ini'), 'nightly', check=2)
    assert 'does not exist' in res.stderr


@pytest.mark.xdist_group("night")
def test_a_fairness_attribute_named_as_a_model_input(ws):
    text = ws.settings.read_text().replace('customer_categories =', 'customer_categories = product, country')
    ws.settings.write_text(text)
    _refused(ws, ws.nightly(check=None), "[inputs] customer_categories names 'country'", "which is a fairness attribute",
             "Remove it from customer_categories or from fairness_attributes.")


@pytest.mark.xdist_group("night")
def test_a_password_given_as_a_query_parameter_is_masked_wherever_the_url_is_shown(ws):
    from goodbad.settings import load_settings, public_settings
    from goodbad.night import Night
    url = 'postgresql://scott@db.example:5432/sales?password=tiger-7731&sslmode=require'
    s = load_settings(ws.settings, environ={'GOODBAD_MASTERDATA_URL': url})
    shown = str(public_settings(s)) + str(Night(None, 'x', ws.runs, s).describe())
    assert 'tiger-7731' not in shown and 'password=***' in shown
    res = ws.run('masterdata', 'create', '--customers', '500', check=None, env={'GOODBAD_MASTERDATA_URL': url})
    assert 'tiger-7731' not in res.stdout + res.stderr, 'not even in the error of a server that does not answer'


def test_the_shipped_policy_is_the_one_goodbad_init_writes(tmp_path):
    "settings.ini of the repository holds every key, at the default `goodbad init` writes: the two never drift apart"
    from goodbad.settings import RULES, load_settings, policy_text
    from conftest import REPO
    shipped = load_settings(REPO / 'settings.ini', environ={})
    (tmp_path / 'settings.ini').write_text(policy_text())
    fresh = load_settings(tmp_path / 'settings.ini', environ={})
    assert [r.key for r in RULES if shipped.sources[r.key] == 'default'] == [], 'every key is written in the shipped one'
    values = lambda s: {r.key: s.values[r.key] for r in RULES if r.kind != 'path'}
    assert values(shipped) == values(fresh)
