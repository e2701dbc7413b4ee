"""Every breach of the data contract is named, counted and illustrated, and stops the night before anything is written."""
import datetime as dt
import pytest
import sqlalchemy as sa
from goodbad.acquire import read_snapshot
from goodbad.contract import contract_tables
from goodbad.core import ContractError
from goodbad.synthetic import scratch_masterdata

AS_OF = dt.date(2026, 11, 1)
COLS = "customer_id, signup_date, country, channel, birth_date, gender"


@pytest.fixture
def md():
    return scratch_masterdata(200)


def violations(engine, contract=None, as_of=AS_OF):
    snap = read_snapshot(engine, contract or contract_tables(), as_of)
    with pytest.raises(ContractError) as e: snap.raise_if_broken()
    return {v.check: v for v in snap.violations}, str(e.value)


def run(engine, *sql):
    with engine.begin() as conn:
        for s in sql: conn.execute(sa.text(s))


def test_a_clean_master_data_passes(md):
    snap = read_snapshot(md, contract_tables(), AS_OF)
    assert snap.violations == [] and snap.fingerprint['tables']['customers']['rows'] == 200
    snap.raise_if_broken()


def test_missing_table(md):
    v, msg = violations(md, contract_tables(outcomes='outcomes'))
    assert v['missing_table'].table == 'outcomes' and 'create table or view outcomes' in msg


def test_missing_column_and_wrong_type(md):
    run(md, "create table sales_feed (sale_id integer, customer_id integer, sold_at datetime, amount varchar(20), category text, payment_method text)")
    v, msg = violations(md, contract_tables(sales='sales_feed'))
    assert v['missing_column'].column == 'payment_status'
    assert v['wrong_type'].column == 'amount' and 'amount must hold a number' in msg


def test_null_values(md):
    run(md, f"create view crm as select customer_id, signup_date, case when customer_id in (4, 8) then null else country end as country, channel, birth_date, gender from customers")
    v, msg = violations(md, contract_tables(customers='crm'))
    assert (v['null_value'].column, v['null_value'].count, v['null_value'].examples) == ('country', 2, [4, 8])


def test_duplicate_ids(md):
    run(md, f"create view crm as select {COLS} from customers union all select {COLS} from customers where customer_id = 7")
    v, msg = violations(md, contract_tables(customers='crm'))
    assert (v['duplicate_id'].count, v['duplicate_id'].examples) == (1, [7])
    assert 'customer_id must be unique in crm' in msg


def test_sales_of_unknown_customers_and_negative_amounts(md):
    run(md, "update sales set customer_id = 90001 where sale_id in (2, 4)", "update sales set amount = -1 where sale_id = 6")
    v, msg = violations(md)
    assert (v['unknown_customer'].count, v['unknown_customer'].examples) == (2, [2, 4])
    assert v['negative_amount'].examples == [6]
    assert 'negative_amount in sales.amount: 1 row (e.g. 6)' in msg


def test_unknown_payment_status_and_outcome(md):
    run(md, "update sales set payment_status = 'pending' where sale_id = 3",
        "update customer_outcomes set outcome = 'meh' where customer_id = (select min(customer_id) from customer_outcomes)")
    v, msg = violations(md)
    assert v['unknown_status'].examples == [3] and v['unknown_outcome'].count == 1
    assert "payment_status must be one of paid, late, unpaid, returned" in msg


def test_dates_in_the_future(md):
    run(md, "update sales set sold_at = '2031-01-01 00:00:00' where sale_id = 5")
    v, msg = violations(md)
    assert v['future_date'].examples == [5] and 'later than tomorrow' in msg


def test_empty_tables(md):
    v, msg = violations(md, as_of=dt.date(2020, 1, 1))
    assert {'customers', 'sales'} == {x.table for x in [v['empty_table']]} | {'sales', 'customers'}
    assert 'empty_table in customers' in msg and 'empty_table in sales' in msg


def test_rows_after_the_snapshot_are_not_breaches(md):
    snap = read_snapshot(md, contract_tables(), dt.date(2026, 10, 1))
    assert snap.violations == [] and snap.fingerprint['tables']['sales']['after_snapshot'] > 0
