"""A night with no model to label customers with is not a failure: later phases skip, nothing is labelled, the
manifest says why, and the exit status is its own (3)."""
import sqlite3
from conftest import Workspace


def test_a_night_without_a_model_says_why_and_exits_3(tmp_path):
    ws = Workspace(tmp_path / 'w')
    res = ws.nightly(check=3, env={'GOODBAD_PRECISION_TARGET': '0.999'})
    m = ws.manifest()
    assert m['status'] == 'no_model' and m['error'] is None
    assert m['no_model'].startswith("no model is in production and tonight's training produced none: no candidate can be expected to hold precision 99.9%")
    assert 'The highest target the guarantee reaches tonight is' in m['no_model'], 'it says what would make a model possible'
    assert [p['status'] for p in m['phases']] == ['succeeded'] * 4 + ['skipped'] * 5
    assert res.stdout.count('skipped, there is no model') == 5 and 'ended with no model' in res.stdout
    assert 'model in production stays' not in res.stdout
    tables = {r[0] for r in sqlite3.connect(ws.masterdata).execute("select name from sqlite_master where type = 'table'")}
    assert 'customer_labels' not in tables, 'nothing is labelled'
