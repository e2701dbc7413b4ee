"""The pages an auditor reads, measured in a real browser (headless Chromium): the verdict on the first screen, no code,
nothing wider than the window. No nightly run is needed: the pages are made from a small executed notebook and from
manifests written here."""
import os
from pathlib import Path
import nbformat
import papermill as pm
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from browser import page_facts, screenshot
from goodbad.report import NO_HISTORY, night_index, render_page

pytestmark = pytest.mark.xdist_group('pages')  # one worker: the notebook below is executed once
WIDTH, HEIGHT = 1280, 800
PHASES = ('10_acquire', '20_features', '30_monitor', '40_train', '50_evaluate', '60_fairness', '70_explain', '80_release', '90_score')


def look(page: Path, name: str) -> None:
    "A screenshot of `page` into $GOODBAD_TEST_SCREENSHOTS (when set), for a person to look at"
    if os.environ.get('GOODBAD_TEST_SCREENSHOTS'):
        screenshot(page, Path(os.environ['GOODBAD_TEST_SCREENSHOTS'])/f'{name}.png', WIDTH, HEIGHT)


def first_screen(facts: dict) -> float:
    "The height of the first screen: what the window shows before any scrolling"
    return min(HEIGHT, facts['inner_height'])


CELLS = [  # a phase notebook in miniature: library cells with wide outputs first, the report last
    ('markdown', '# features\n> Tonight\'s features of every customer, from the snapshot.\n\nOwner: data scientist.', None),
    ('code', 'import numpy as np, pandas as pd\nimport matplotlib.pyplot as plt', None),
    ('markdown', '## Many columns\n\nEvery feature of a few customers: forty columns, wider than any screen.', None),
    ('code', 'wide = pd.DataFrame(np.arange(5 * 40).reshape(5, 40) * 1234.5678, columns=[f"feature_with_a_long_name_{i}" for i in range(40)])\nwide', None),
    ('code', 'print("customer_ids=" + ",".join(str(10_000_000 + i) for i in range(300)))', None),
    ('code', 'fig, ax = plt.subplots(figsize=(22, 3)); ax.plot(range(10)); plt.show()', None),
    ('code', 'tonight = dict(customers=30_000, missing=0.031)', None),
    ('markdown', '## Report', ['report']),
    ('code', 'from goodbad.verdict import verdict\nverdict(f"Tonight\'s {tonight[\'customers\']:,} customers have their features; none is out of its range.",\n'
             '        [dict(figure="customers", value=tonight["customers"], limit=500, passed=True),\n'
             '         dict(figure="missing birth dates", value=tonight["missing"], limit=0.05, passed=True)])', ['report']),
    ('code', 'wide.describe().T.head(3)', ['report']),
]


@pytest.fixture(scope='module')
def executed(tmp_path_factory) -> Path:
    "The miniature phase notebook, executed"
    nb = nbformat.v4.new_notebook(metadata=dict(kernelspec=dict(name='python3', display_name='python3', language='python')))
    for kind, source, tags in CELLS:
        cell = nbformat.v4.new_markdown_cell(source) if kind == 'markdown' else nbformat.v4.new_code_cell(source)
        if tags: cell.metadata['tags'] = tags
        nb.cells.append(cell)
    NotebookClient(nb, timeout=120, kernel_name='python3').execute()
    path = tmp_path_factory.mktemp('phase')/'20_features.ipynb'
    nbformat.write(nb, str(path))
    return path


def test_page_shows_the_verdict_first_without_code_and_fits_the_window(executed):
    before = executed.read_text()
    page = render_page(executed)
    assert page == executed.with_suffix('.html') and executed.read_text() == before  # the notebook is not changed
    facts = page_facts(page, WIDTH, HEIGHT)
    look(page, 'phase-page')
    assert facts['verdict_top'] is not None and facts['verdict_top'] < first_screen(facts), facts
    assert "30,000 customers have their features" in facts['verdict_text'] and '3.1%' in facts['verdict_text']
    assert facts['code_inputs'] == 0
    assert facts['scroll_width'] <= facts['inner_width'], facts['too_wide']
    text = facts['text']
    assert text.index('30,000 customers') < text.index('How it was computed') < text.index('Many columns')
    assert 'feature_with_a_long_name_39' in text and 'import numpy' not in text and 'In [' not in text
    assert facts['images'] == 1


def test_the_probe_sees_code_and_overflow_where_there_is_some(executed, tmp_path):
    "The measures above are not blind: nbconvert's default page of the same notebook shows its code, and a wide box overflows"
    body, _ = HTMLExporter().from_filename(str(executed))
    (tmp_path/'default.html').write_text(body)
    facts = page_facts(tmp_path/'default.html', WIDTH, HEIGHT)
    assert facts['code_inputs'] == sum(kind == 'code' for kind, _, _ in CELLS)
    assert facts['verdict_top'] > facts['inner_height']  # the verdict is at the bottom, where the notebook has it
    (tmp_path/'wide.html').write_text('<html><body><div class="too-wide" style="width:3000px">x</div></body></html>')
    facts = page_facts(tmp_path/'wide.html', WIDTH, HEIGHT)
    assert facts['scroll_width'] > facts['inner_width'] and facts['too_wide'] == ['div.too-wide'] and facts['verdict_top'] is None


def test_page_without_report_cells_keeps_its_order(executed, tmp_path):
    nb = nbformat.read(str(executed), as_version=4)
    for c in nb.cells: c.metadata.pop('tags', None)
    nbformat.write(nb, str(tmp_path/'untagged.ipynb'))
    facts = page_facts(render_page(tmp_path/'untagged.ipynb'), WIDTH, HEIGHT)
    assert facts['code_inputs'] == 0 and 'How it was computed' not in facts['text']
    assert facts['text'].index('Many columns') < facts['text'].index('Report')


def test_phase_that_stopped_on_an_error_opens_on_it(tmp_path):
    "papermill's own failure: the page opens on a verdict made from the error, and links to the step that failed"
    nb = nbformat.v4.new_notebook(metadata=dict(kernelspec=dict(name='python3', display_name='python3', language='python')))
    nb.cells = [nbformat.v4.new_markdown_cell('# train\n> Tonight\'s challengers.'),
                nbformat.v4.new_code_cell('run_date: str = "2026-01-31"  # the night being run', metadata=dict(tags=['parameters'])),
                nbformat.v4.new_markdown_cell('## Outcomes'), nbformat.v4.new_code_cell('known = 12\nknown'),
                nbformat.v4.new_code_cell('raise ValueError(f"only {known} customers have a known outcome, at least 300 are needed to train")'),
                nbformat.v4.new_markdown_cell('## Report', metadata=dict(tags=['report'])),
                nbformat.v4.new_code_cell('from goodbad.verdict import verdict\nverdict("Trained.")', metadata=dict(tags=['report']))]
    nbformat.write(nb, str(tmp_path/'source.ipynb'))
    with pytest.raises(pm.PapermillExecutionError):
        pm.execute_notebook(str(tmp_path/'source.ipynb'), str(tmp_path/'40_train.ipynb'), parameters=dict(run_date='2026-11-26'),
                            kernel_name='python3', progress_bar=False)
    page = render_page(tmp_path/'40_train.ipynb')
    facts = page_facts(page, WIDTH, HEIGHT)
    look(page, 'phase-failed')
    assert facts['verdict_text'].startswith('This phase stopped on an error: ValueError: only 12 customers have a known outcome')
    assert facts['verdict_top'] < first_screen(facts) and facts['code_inputs'] == 0
    assert 'In [' not in facts['text'] and 'Go to the step that failed' in facts['text'] and "run_date = 2026-11-26" in facts['text']
    assert facts['title'] == 'train, the night of 2026-11-26'


def manifest(run_date: str, status: str = 'succeeded', **changes) -> dict:
    "A night's run.json as the runner writes it (the fields the index reads)"
    version = '2026-11-20.1-hist_gradient_boosting-3f9a2c'
    m = dict(run_id=f'{run_date}.1', run_date=run_date, status=status, error=None,
             started_at=f'{run_date}T01:00:00+00:00', finished_at=f'{run_date}T01:09:41+00:00', seconds=581.2,
             settings=dict(precision_target=dict(value=0.9, source='settings.ini'), confidence_level=dict(value=0.95, source='settings.ini'),
                           min_realized_outcomes=dict(value=30, source='settings.ini')),
             code=dict(goodbad='0.3.0', git_commit='26d3219a1b2c3d4e5f', git_dirty=False),
             phases=[dict(phase=p.split('_', 1)[1], notebook=f'{p}.ipynb', html=f'{p}.html', status='succeeded', seconds=64.5, error=None) for p in PHASES],
             model=dict(version=version, algorithm='hist_gradient_boosting', threshold=0.6123,
                        holdout=dict(precision=0.931, precision_low=0.902, precision_high=0.954, flagged=870)),
             canary=None, labels=dict(customers=30000, bad=2100, good=27900, model_version=version, algorithm='hist_gradient_boosting',
                                      threshold=0.6123, canary_version=None, by_role={'champion': 30000}),
             trained_tonight=None, release=['nothing to release tonight'], waiting_for_approval=[],
             fairness=dict(version=version, passed=True, failures=[]), retrain=dict(started=False, reasons=[]), alerts=[],
             monitor=dict(drifted=[], max_psi=0.041, estimate=dict(estimate=0.93), estimate_reliable=True,
                          latest_realized=dict(label_night='2026-09-20', labelled_bad=2000, known=412, bad=380, precision=0.922, low=0.894, high=0.946)))
    return m | changes


def test_first_night_says_there_is_no_history_yet(tmp_path):
    page = night_index(tmp_path, manifest('2026-11-26'), [])
    facts = page_facts(page, WIDTH, HEIGHT)
    look(page, 'night-first')
    assert NO_HISTORY in facts['text'] and facts['images'] == 0
    assert facts['verdict_top'] < first_screen(facts)
    assert facts['verdict_text'].startswith('Labelled 30,000 customers with model 2026-11-20.1-hist_gradient_boosting-3f9a2c (champion).')
    assert facts['scroll_width'] <= facts['inner_width'], facts['too_wide']


def test_night_with_history_plots_the_trend(tmp_path):
    history = [manifest(f'2026-11-{d}', labels=dict(customers=30000, bad=2000 + 20 * d, good=28000 - 20 * d),
                        monitor=dict(latest_realized=dict(label_night=f'2026-09-{d - 6}', known=400, precision=0.9 + (d % 3) / 100, low=0.87, high=0.94)))
               for d in range(21, 26)]
    history[2] = manifest('2026-11-23', 'failed', labels=None, model=None, monitor=None, error='phase acquire failed: ContractError: ...')
    alerts = ['data drift: 2 feature(s) moved (amount_90d (PSI 0.31 > 0.2), days_since_last_sale (KS 0.14 > 0.1))',
              "prediction drift: the scores' PSI is 0.240 (limit 0.2)"]
    tonight = manifest('2026-11-26', alerts=alerts, waiting_for_approval=['2026-11-26.1-logistic_regression-77aa01'],
                       monitor=manifest('x')['monitor'] | dict(drifted=['amount_90d', 'days_since_last_sale'], max_psi=0.31))
    page = night_index(tmp_path, tonight, history)
    facts = page_facts(page, WIDTH, HEIGHT)
    look(page, 'night-history')
    assert facts['images'] >= 1 and NO_HISTORY not in facts['text']
    assert facts['verdict_top'] < first_screen(facts)
    assert 'Needs attention: 2 alerts' in facts['verdict_text'] and 'FAIL' in facts['verdict_text']
    assert facts['scroll_width'] <= facts['inner_width'], facts['too_wide']


def test_failed_night_names_its_failing_phase(tmp_path):
    m = manifest('2026-11-26', 'failed', error='phase train failed: GoodbadError: only 12 customers have a known outcome',
                 model=None, labels=None, canary=None, release=None, fairness=None, trained_tonight=None)
    m['phases'] = m['phases'][:3] + [dict(m['phases'][3], status='failed', error='GoodbadError: only 12 customers have a known outcome, '
                                          'at least 300 are needed to train: wait for more outcomes, or lower min_training_customers')]
    page = night_index(tmp_path, m, [manifest('2026-11-25')])
    facts = page_facts(page, WIDTH, HEIGHT)
    look(page, 'night-failed')
    assert facts['verdict_text'].startswith('The night failed in phase train: GoodbadError: only 12 customers')
    assert facts['verdict_top'] < first_screen(facts)
    assert facts['scroll_width'] <= facts['inner_width'], facts['too_wide']


def test_a_manifest_with_nothing_in_it_still_makes_a_page(tmp_path):
    facts = page_facts(night_index(tmp_path, {}, [{}, {'run_date': None}]), WIDTH, HEIGHT)
    assert 'did not finish' in facts['verdict_text'] and NO_HISTORY in facts['text'] and facts['images'] == 0
