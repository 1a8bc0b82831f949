-- open findings after each run, every policy together, replayed from the history. A run
-- audits each policy it had something new for (a row of audit.runs each): its lines and
-- findings are their sums. Each change holds from its run until the finding's next change; a
-- waiver has no run and holds from the first run on or after its date (runs never change a
-- waived finding). A change to open starts an open spell and the change after it, which
-- leaves open, ends it: counting +1 and -1 at their runs needs no finding's changes in order,
-- and keeps this one pass over the history, however many runs there are. A row that leaves
-- the status as it was (a notice, a response, an upheld dispute) starts no spell and ends none.
with run as (
    select run_id, min(as_of) as as_of, sum(in_scope_lines) as in_scope_lines,
        sum(findings_produced) as findings_produced
    from audit.runs
    group by run_id
),
changes as (
    select
        history.from_status,
        history.to_status,
        coalesce(
            history.run_id,
            (select min(run.run_id) from run where run.as_of >= history.changed_on)
        ) as from_run
    from audit.finding_history as history
    where history.from_status is distinct from history.to_status
),
open_deltas as (
    select
        from_run as run_id,
        count(*) filter (where to_status = 'open')
        - count(*) filter (where from_status = 'open') as delta
    from changes
    where from_run is not null
    group by all
),
moves_in_run as (
    select
        run_id,
        count(*) filter (where to_status = 'open') as opened,
        count(*) filter (where from_status = 'open' and to_status <> 'open') as closed
    from audit.finding_history
    where run_id is not null and from_status is distinct from to_status
    group by run_id
)
select
    runs.run_id,
    runs.as_of,
    runs.in_scope_lines::bigint as in_scope_lines,
    runs.findings_produced::bigint as findings_produced,
    coalesce(moves_in_run.opened, 0) as opened,
    coalesce(moves_in_run.closed, 0) as closed,
    coalesce(sum(deltas.delta) over (order by runs.run_id), 0)::bigint as open_findings
from run as runs
left join open_deltas as deltas using (run_id)
left join moves_in_run using (run_id)
order by runs.run_id
