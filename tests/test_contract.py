"""Every breach of the data contract is named, counted and illustrated, and stops the night before anything is written."""
import datetime as dt, math
import pytest
import sqlalchemy as sa
from goodbad.acquire import read_snapshot, MAX_AMOUNT
from goodbad.contract import contract_tables, make_engine
from goodbad.core import ContractError
from goodbad.synthetic import scratch_masterdata, create_masterdata

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


def found(snap):
    "Each violation as (check, table, column, count, examples), sorted"
    return sorted((v.check, v.table, v.column, v.count, v.examples) for v in snap.violations)


def test_dates_written_in_other_forms(md):
    run(md, "update sales set sold_at = '1/1/2025' where sale_id = 2", "update sales set sold_at = '2025/01/01' where sale_id = 4",
        "update sales set sold_at = '2025-02-30 10:00:00' where sale_id = 6",
        "update customers set signup_date = '01-01-2025' where customer_id = 3", "update customers set birth_date = '1980/05/17' where customer_id = 5",
        "update customer_outcomes set known_on = '2025/01/01' where customer_id = (select min(customer_id) from customer_outcomes)")
    with md.connect() as conn: first_outcome = conn.execute(sa.text("select min(customer_id) from customer_outcomes")).scalar()
    snap = read_snapshot(md, contract_tables(), AS_OF)
    assert found(snap) == [('bad_date', 'customer_outcomes', 'known_on', 1, [first_outcome]), ('bad_date', 'customers', 'birth_date', 1, [5]),
                           ('bad_date', 'customers', 'signup_date', 1, [3]), ('bad_date', 'sales', 'sold_at', 3, [2, 4, 6])]
    with pytest.raises(ContractError) as e: snap.raise_if_broken()
    assert 'bad_date in sales.sold_at: 3 rows (e.g. 2, 4, 6). Fix: write sold_at as ISO text of a real day, YYYY-MM-DD HH:MM:SS' in str(e.value)
    assert 'bad_date in customers.signup_date: 1 row (e.g. 3). Fix: write signup_date as ISO text of a real day, YYYY-MM-DD (e.g. 2025-01-31), or convert it' in str(e.value)


def test_a_malformed_date_is_neither_counted_as_read_nor_in_the_future(md):
    clean = read_snapshot(md, contract_tables(), AS_OF).fingerprint['tables']['sales']
    run(md, "update sales set sold_at = '9/9/2020' where sale_id = 2",  # sorts after the run date and after tomorrow
        "update sales set sold_at = '01-01-2025' where sale_id = (select min(sale_id) from sales where sold_at = (select max(sold_at) from sales where sold_at like '20%'))")
    snap = read_snapshot(md, contract_tables(), AS_OF)
    assert [v.check for v in snap.violations] == ['bad_date'] and snap.violations[0].count == 2
    sales = snap.fingerprint['tables']['sales']
    assert sales['rows'] == clean['rows'] - 2 and sales['after_snapshot'] == clean['after_snapshot']
    assert sales['first'] == clean['first'] and sales['last'] < clean['last'], 'the malformed dates are at neither end'


def test_amounts_that_are_not_numbers(md):
    run(md, "update sales set amount = 'abc' where sale_id = 2", "update sales set amount = '12,50' where sale_id = 4",
        "update sales set amount = 'inf' where sale_id = 6")
    v, msg = violations(md)
    assert set(v) == {'not_a_number'}, 'text sorts above every number in SQLite: it is no amount_too_large'
    assert (v['not_a_number'].count, v['not_a_number'].examples) == (3, [2, 4, 6])
    assert "not_a_number in sales.amount: 3 rows (e.g. 2, 4, 6). Fix: amount must be stored as a number" in msg


def test_infinite_amounts(md):
    run(md, "update sales set amount = 1e999 where sale_id = 2", "update sales set amount = -1e999 where sale_id = 4")
    snap = read_snapshot(md, contract_tables(), AS_OF)
    v = {x.check: x for x in snap.violations}
    assert (v['infinite_amount'].count, v['infinite_amount'].examples) == (2, [2, 4]) and 'amount_too_large' not in v
    assert math.isfinite(snap.fingerprint['tables']['sales']['amount_sum']), 'the amount total leaves them out'
    with pytest.raises(ContractError, match='infinite_amount in sales.amount: 2 rows'): snap.raise_if_broken()


def test_implausibly_large_amounts(md):
    run(md, f"update sales set amount = {MAX_AMOUNT - 0.01} where sale_id = 2")
    assert read_snapshot(md, contract_tables(), AS_OF).violations == [], 'the largest amount a numeric(12, 2) holds is a sale'
    run(md, "update sales set amount = 1e15 where sale_id = 4", f"update sales set amount = {MAX_AMOUNT} where sale_id = 6")
    v, msg = violations(md)
    assert set(v) == {'amount_too_large'} and v['amount_too_large'].examples == [4, 6]
    assert "Fix: no sale reaches 10,000,000,000 (the contract's amount is a numeric(12, 2))" in msg


def test_sales_before_their_customer_signed_up(md):
    day_before = "(select date(signup_date, '-1 days') || ' 23:59:59' from customers c where c.customer_id = sales.customer_id)"
    signup_day = "(select signup_date || ' 00:00:00' from customers c where c.customer_id = sales.customer_id)"
    run(md, f"update sales set sold_at = {day_before} where sale_id in (3, 9)", f"update sales set sold_at = {signup_day} where sale_id = 5")
    v, msg = violations(md)
    assert set(v) == {'sale_before_signup'} and (v['sale_before_signup'].count, v['sale_before_signup'].examples) == (2, [3, 9])
    assert 'sale_before_signup in sales.sold_at: 2 rows (e.g. 3, 9). Fix: no sale is dated before the day its customer signed up (customers.signup_date)' in msg


def test_hostile_values_on_postgres(pg_url, pg_schema):
    engine = make_engine(pg_url.replace('postgresql://', 'postgresql+psycopg://', 1))
    contract = contract_tables(schema=pg_schema)
    create_masterdata(engine, 200, end=dt.date(2026, 10, 31), history_days=365, contract=contract)
    assert read_snapshot(engine, contract, AS_OF).violations == [], 'every check compiles and runs on PostgreSQL'
    sales = f"{pg_schema}.sales"
    run(engine, f"alter table {sales} alter column amount type double precision",  # a float column can hold NaN, infinities and 1e15
        f"update {sales} set amount = 'NaN' where sale_id = 2", f"update {sales} set amount = 'Infinity' where sale_id = 4",
        f"update {sales} set amount = 1e15 where sale_id = 6", f"update {sales} set sold_at = '2001-01-01 10:00' where sale_id = 8")
    snap = read_snapshot(engine, contract, AS_OF)
    assert found(snap) == [('amount_too_large', 'sales', 'amount', 1, [6]), ('infinite_amount', 'sales', 'amount', 1, [4]),
                           ('not_a_number', 'sales', 'amount', 1, [2]), ('sale_before_signup', 'sales', 'sold_at', 1, [8])]
    assert math.isfinite(snap.fingerprint['tables']['sales']['amount_sum'])
    run(engine, f"update {sales} set amount = 1 where sale_id in (2, 4)", f"alter table {sales} alter column amount type numeric",
        f"update {sales} set amount = 1e400 where sale_id = 6")  # an unconstrained numeric holds more than any float
    assert [v.check for v in read_snapshot(engine, contract, AS_OF).violations] == ['amount_too_large', 'sale_before_signup']
    engine.dispose()
