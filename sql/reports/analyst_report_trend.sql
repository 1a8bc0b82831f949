-- open findings after each run, replayed from the history. Each change holds from its run
-- until the finding's next change; a waiver has no run and holds from the first run on or
-- after its date (runs never change a waived finding). Counting +1 where an open spell starts
-- and -1 where it ends keeps this linear in the history, however many runs there are.
with changes as (
    select
        history.payer, history.claim_id, history.claim_line_number, history.rule_id,
        history.to_status,
        history.run_id is null as is_waiver,
        coalesce(
            history.run_id,
            (select min(runs.run_id) from audit.runs as runs where runs.as_of >= history.changed_on)
        ) as from_run
    from audit.finding_history as history
),
spells as (
    select
        to_status,
        from_run,
        lead(from_run) over (
            partition by payer, claim_id, claim_line_number, rule_id
            order by from_run, is_waiver
        ) as until_run
    from changes
    where from_run is not null
),
open_deltas as (
    select from_run as run_id, count(*) as delta
    from spells where to_status = 'open' group by all
    union all
    select until_run, -count(*)
    from spells where to_status = 'open' and until_run is not null group by all
),
moves_in_run as (
    select
        run_id,
        count(*) filter (where to_status = 'open') as opened,
        count(*) filter (where from_status = 'open' and to_status <> 'open') as closed
    from audit.finding_history
    where run_id is not null
    group by run_id
)
select
    runs.run_id,
    runs.as_of,
    runs.in_scope_lines,
    runs.findings_produced,
    coalesce(moves_in_run.opened, 0) as opened,
    coalesce(moves_in_run.closed, 0) as closed,
    coalesce(sum(deltas.delta) over (order by runs.run_id), 0)::bigint as open_findings
from audit.runs as runs
left join (select run_id, sum(delta) as delta from open_deltas group by run_id) as deltas
    using (run_id)
left join moves_in_run using (run_id)
order by runs.run_id
