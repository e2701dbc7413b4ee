"""goodbad simulate: real nights on a world of its own, a drift switched on, noticed, and a retrain started with its reason."""
import json
import pytest
from conftest import goodbad, REPO


@pytest.mark.xdist_group("simulate")
def test_simulate_notices_the_drift_and_retrains(tmp_path):
    world = tmp_path / 'world'
    res = goodbad('--settings', str(REPO / 'settings.ini'), 'simulate', '--nights', '2', '--scenario', 'new_market', '--drift-after', '2',
                  '--step-days', '28', '--customers', '15000', '--into', str(world),
                  env={'GOODBAD_CANDIDATES': 'logistic_regression', 'GOODBAD_MASTERDATA_URL': 'postgresql://must-not-be-used@nowhere/x'}, check=0)
    assert 'the scenario new_market' in res.stdout and 'retrain: data drift' in res.stdout and 'ALERT: data drift' in res.stdout
    sim = json.loads((world / 'simulation.json').read_text())
    last = sim['nights'][-1]
    m = json.loads((world / 'runs' / last['date'] / 'run.json').read_text())
    assert m['status'] == 'succeeded' and m['retrain']['started']
    assert any(r.startswith('data drift') and 'country' in r for r in m['retrain']['reasons']), m['retrain']['reasons']
    assert m['alerts'] and m['settings']['masterdata_url']['value'].startswith('sqlite:'), 'the simulation never reaches a real database'
    assert (world / 'runs' / last['date'] / '30_monitor.html').is_file()
