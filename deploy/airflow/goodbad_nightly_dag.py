"""goodbad's nightly run as an Airflow DAG (Airflow 2.4 and later, and 3.x).

Drop this file into the Airflow dags folder of a machine (or worker image) where goodbad is installed, and edit the
constants below. The task runs `goodbad nightly --date DAY --json`, DAY being the date the run starts on, in the DAG's
timezone. What each exit status of `goodbad nightly` becomes:

  0  succeeded               -> success
  3  no model tonight        -> success: nothing in production and none could be released; run.json says why, and it is
                                 not something a retry or a page at 01:30 fixes
  1  a phase failed          -> failed, never retried: the night's record (run.json, the failing notebook) needs a person,
                                 and customer_labels was left as it was
  2  could not start         -> tried again twice, 10 minutes apart, then failed: usually another run holds the lock (a
                                 person's run, or last night's still going); a setting out of range fails the same way
                                 three times, harmlessly, since nothing is read or written before it is refused

Airflow's own retries apply to every failure alike, so they stay at 0 and the exit-2 retries happen inside the task.
"""
from datetime import datetime, timedelta

try:
    from airflow.sdk import DAG  # Airflow 3
except ImportError:
    from airflow import DAG  # Airflow 2
try:
    from airflow.providers.standard.operators.bash import BashOperator  # Airflow 3, or 2.x with the standard provider
except ImportError:
    from airflow.operators.bash import BashOperator  # Airflow 2

# --- what to edit ---------------------------------------------------------------------------------------------------
GOODBAD_HOME = "/srv/goodbad"  # the folder with settings.ini (goodbad init wrote it); runs/, models/ ... are below it
GOODBAD = f"{GOODBAD_HOME}/.venv/bin/goodbad"  # the goodbad executable on the worker
ENV_FILE = "/etc/goodbad/env"  # KEY=value lines with the database URLs (GOODBAD_MASTERDATA_URL ...); skipped if absent
START_RETRIES = 2  # more attempts after exit status 2 (could not start) ...
START_RETRY_DELAY_SECONDS = 600  # ... this far apart
NIGHT_TIMEOUT = timedelta(hours=4)  # a longer night is stopped: goodbad records it as failed and releases its lock
# Nights start at 01:30 in the timezone of START_DATE: a naive date means Airflow's default_timezone (core settings);
# for another zone, e.g. pendulum.datetime(2026, 1, 1, tz="Europe/Berlin").
START_DATE = datetime(2026, 1, 1)
# ---------------------------------------------------------------------------------------------------------------------

# The night's date is the day the run starts, as cron and the systemd timer run it (`goodbad nightly` without --date).
# Not {{ ds }}: Airflow 2 gives a cron schedule's run the start of its data interval, the day before. data_interval_end
# is the moment the run was due on Airflow 2 and 3 alike; a manual run on Airflow 3 may have none, and then its
# run_after stands in. It is converted to the DAG's timezone before its date is taken.
NIGHT_DATE = "{{ (data_interval_end or dag_run.run_after).in_timezone(dag.timezone) | ds }}"


def nightly_command(goodbad=GOODBAD, env_file=ENV_FILE, retries=START_RETRIES, delay=START_RETRY_DELAY_SECONDS, date=NIGHT_DATE):
    "The bash script the task runs: the night, exit status 2 tried again, the no-model status 3 turned into success"
    return f"""\
if [ -r '{env_file}' ]; then set -a; . '{env_file}'; set +a; fi
attempt=0
while :; do
  '{goodbad}' nightly --date {date} --json
  rc=$?
  [ "$rc" -eq 2 ] && [ "$attempt" -lt {retries} ] || break
  attempt=$((attempt + 1))
  echo "goodbad could not start (exit status 2): trying again in {delay} s, attempt $attempt of {retries}" >&2
  sleep {delay}
done
if [ "$rc" -eq 3 ]; then
  echo "no model tonight (exit status 3): counted as success; nothing was labelled, run.json says why" >&2
  exit 0
fi
exit "$rc"
"""


with DAG(
    dag_id="goodbad_nightly",
    description="Label every customer good or bad; keep the night's executed notebooks as the audit record",
    schedule="30 1 * * *",
    start_date=START_DATE,
    catchup=False,  # a missed night is not replayed for every day it missed: the next night labels from the data as it is
    max_active_runs=1,  # never two nights at once (goodbad's lock would refuse the second anyway)
    tags=["goodbad"],
    default_args={"owner": "goodbad", "retries": 0},
) as dag:
    nightly = BashOperator(
        task_id="nightly",
        bash_command=nightly_command(),
        cwd=GOODBAD_HOME,
        retries=0,  # exit status 1 (a failed phase) needs a person, never a blind retry; exit 2 is retried above
        execution_timeout=NIGHT_TIMEOUT,
        do_xcom_push=False,  # the night's JSON summary is in the task log
    )
