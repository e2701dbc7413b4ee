"""A real night as its auditor meets it: its pages in a browser (verdict on the first screen, no code), the chain of
nights that `goodbad verify` walks, `goodbad why` about one customer, and `goodbad replay` of the night."""
import datetime as dt, json, os, shutil, sqlite3, stat
from pathlib import Path
import pytest
import sqlalchemy as sa
from conftest import RUN_DATE, Workspace
from browser import page_facts, screenshot
from goodbad.nightly import PHASES

NEXT = str(dt.date.fromisoformat(RUN_DATE) + dt.timedelta(days=1))


def writable(path: Path) -> Path:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return path


def copy_of(ws, dest: Path) -> Workspace:
    "The whole workspace, its runs included (their files stay read-only)"
    shutil.copytree(ws.root, dest)
    w = Workspace.__new__(Workspace)
    w.root, w.env = dest, ws.env
    return w


@pytest.mark.xdist_group("night")
def test_every_page_of_the_night_opens_on_its_verdict_without_code(night):
    day = night.runs / RUN_DATE
    shots = os.environ.get('GOODBAD_TEST_SCREENSHOTS')
    for name in ['index', *PHASES]:
        page = day / f'{name}.html'
        f = page_facts(page)
        first_screen = min(800, f['inner_height'])
        assert f['verdict_top'] is not None and f['verdict_top'] < first_screen * 0.6, f"{name}: the verdict is not on the first screen ({f['verdict_top']})"
        assert f['code_inputs'] == 0, f"{name}: {f['code_inputs']} code inputs on a page for readers who never run code"
        assert f['scroll_width'] <= f['inner_width'], f"{name}: wider than the window ({f['scroll_width']} > {f['inner_width']}): {f.get('too_wide')}"
        if shots: screenshot(page, Path(shots) / f'{name}.png', 1280, 2400)
    index = (day / 'index.html').read_text()
    for p in PHASES: assert f'href="{p}.html"' in index, f'the index links to the {p} page'
    assert 'no history yet' in index, 'a first night draws no empty trend'


@pytest.mark.xdist_group("night")
def test_the_night_is_sealed_into_the_chain(night):
    day, m = night.runs / RUN_DATE, night.manifest()
    assert m['previous'] is None, 'the first night links to nothing'
    assert set(m['files']) >= {f'{p}.ipynb' for p in PHASES} | {'index.html', 'artifacts/labels.json', 'artifacts/features.parquet'}
    assert m['model']['version'] in m['registry']['models'] and m['registry']['events'], 'what the registry said of the night'
    assert not any(p.stat().st_mode & 0o222 for p in day.rglob('*') if p.is_file()), 'every file of a finished night is read-only'
    assert night.run('verify', check=0).stdout.strip().endswith('the chain holds')


@pytest.mark.xdist_group("night")
def test_verify_names_each_edit_and_the_next_night_alerts_on_it(night, tmp_path):
    ws = copy_of(night, tmp_path / 'ws')
    day = ws.runs / RUN_DATE
    nb = writable(day / '40_train.ipynb'); nb.write_text(nb.read_text().replace('"cells"', '"cells" ', 1))
    art = writable(day / 'artifacts' / 'monitor.json'); art.write_text(art.read_text().replace('"retrain": true', '"retrain": false'))
    (day / 'artifacts' / 'labels.json').unlink()
    mf = writable(day / 'run.json'); edited = json.loads(mf.read_text()); edited['model']['threshold'] = 0.5; mf.write_text(json.dumps(edited))
    version = ws.manifest()['model']['version']
    con = sqlite3.connect(ws.root / 'state' / 'goodbad.sqlite')
    con.execute("update goodbad_models set threshold = 0.5 where version = ?", (version,)); con.commit(); con.close()
    res = ws.run('verify', check=1)
    for item in ('40_train.ipynb', 'artifacts/monitor.json', 'artifacts/labels.json', 'run.json', f'registry:{version}'):
        assert item in res.stdout, f"{item} is not named:\n{res.stdout}"
    report = json.loads(ws.run('verify', '--json', check=1).stdout)
    assert not report['holds'] and {f['night'] for f in report['findings']} == {RUN_DATE}
    ws.run('masterdata', 'advance', '--days', '1', check=0)
    refused = ws.nightly(NEXT, check=2)  # a champion whose threshold was edited by hand is not used
    assert "threshold 0.5 is not the one it was registered with" in refused.stderr and not (ws.runs / NEXT).exists()
    con = sqlite3.connect(ws.root / 'state' / 'goodbad.sqlite')
    con.execute("update goodbad_models set threshold = ? where version = ?", (night.manifest()['model']['threshold'], version)); con.commit(); con.close()
    # the next night checks the one before it: it alerts, and goes on
    run = ws.nightly(NEXT, check=None)
    m2 = ws.manifest(NEXT)
    assert m2['previous']['run_date'] == RUN_DATE and m2['previous']['run_id'] == f'{RUN_DATE}.1'
    assert any(a.startswith(f'audit record of {RUN_DATE}') and '40_train.ipynb' in a for a in m2['alerts']), m2['alerts']
    assert 'ALERT: audit record of' in run.stdout


@pytest.mark.xdist_group("night")
def test_why_answers_about_one_customer(night):
    con = sqlite3.connect(night.masterdata)
    cid, = con.execute("select customer_id from customer_labels where label = 'bad' order by customer_id limit 1").fetchone()
    con.close()
    w = json.loads(night.run('why', '--customer', str(cid), '--date', RUN_DATE, '--json', check=0).stdout)
    m = night.manifest()
    assert (w['label'], w['night'], w['run_id']) == ('bad', RUN_DATE, m['run_id'])
    assert w['model']['version'] == m['model']['version'] and w['threshold'] == pytest.approx(m['model']['threshold'])
    assert w['score'] >= w['threshold'] and w['reasons'], 'a bad label comes with its reasons'
    assert w['data_fingerprint'] == m['data_fingerprint']['hash']
    assert w['went_live'] and w['went_live'][0]['to'] == 'champion'
    assert Path(w['reports']['index']).name == 'index.html'
    text = night.run('why', '--customer', str(cid), check=0).stdout
    assert f'customer {cid} was labelled BAD on the night of {RUN_DATE}' in text
    assert 'has no label on any night' in night.run('why', '--customer', '-5', check=2).stderr


@pytest.mark.xdist_group("night")
def test_replay_of_an_unchanged_night_is_identical_and_of_changed_data_says_what_changed(night, tmp_path):
    res = night.run('replay', RUN_DATE, '--into', str(tmp_path / 'same'), check=0)
    assert 'identical, value for value' in res.stdout and 'is what the night read' in res.stdout
    ws = copy_of(night, tmp_path / 'ws')
    con = sqlite3.connect(ws.masterdata)
    cid, = con.execute("select customer_id from customer_labels where label = 'bad' order by score desc limit 1").fetchone()
    con.execute("update sales set amount = amount * 3 where customer_id = ? and sold_at < ?", (cid, RUN_DATE)); con.commit(); con.close()
    r = json.loads(ws.run('replay', RUN_DATE, '--into', str(tmp_path / 'changed'), '--json', check=1).stdout)
    assert list(r['data_changed']) == ['sales'] and not r['identical'] and r['differ'] >= 1, r
    assert any(e['customer_id'] == cid for e in r['examples'])
    assert (tmp_path / 'changed' / 'labels.parquet').is_file()
