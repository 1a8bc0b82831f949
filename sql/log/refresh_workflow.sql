-- the workflow's clock, run on every run's as-of date $as_of after the log is updated and
-- before the MCO packages are written (docs/workflow.md):
--   a finding whose date of service is before $lookback_start (null: no lookback) is marked
--   outside_lookback, and one back inside it unmarked;
--   an open finding not notified yet that its MCO's package can show (not held, inside the
--   lookback) is notified tonight, due $as_of plus its MCO's allowance
--   (temp table reprocessing_allowance: mco, days; one row for every MCO with findings);
--   a notified finding without a due date (notified before due dates were kept) gets one;
--   an open finding past its deadline (its due date, or the planned date of a `corrected`
--   response when that comes first) becomes overdue tonight, unless held or outside the
--   lookback.
-- each change is a history row of the run (run_id).
--
-- each rule is written once, as a macro: the history rows and the updates of audit.findings
-- apply the same ones. The updates test each finding by its own columns rather than join the
-- changes: DuckDB holds every row of an update joined to another table in memory, and a first
-- audit at 30 million lines, notifying 14.5 million findings, ran out of it.

create or replace temp macro beyond_lookback(service_date, lookback_start) as
    coalesce(service_date < lookback_start, false);

-- the MCO's days to reprocess from the notice (its column is `mco`, not `payer`, so that a
-- finding's `payer` cannot bind to it here)
create or replace temp macro allowance_days(payer) as (
    select allowance.days::integer from reprocessing_allowance as allowance
    where allowance.mco = payer
);

create or replace temp macro notice_goes_out(status, notified_date, held, beyond_lookback) as
    status = 'open' and notified_date is null and not held and not beyond_lookback;

create or replace temp macro due_date_missing(status, notified_date, due_date) as
    status = 'open' and notified_date is not null and due_date is null;

create or replace temp macro deadline(due_date, notified_date, allowance_days, response, planned_date) as
    least(
        coalesce(due_date, notified_date + allowance_days),
        case when response = 'corrected' then planned_date end
    );

create or replace temp macro deadline_passed(
    status, notified_date, overdue_since, held, beyond_lookback, deadline, as_of
) as
    status = 'open' and notified_date is not null and overdue_since is null
        and not held and not beyond_lookback and deadline < as_of;

create or replace temp table workflow_changes as
with finding as (
    select *,
        deadline(due_date, notified_date, allowance_days, response, planned_date) as deadline
    from (
        select findings.*,
            audit.finding_held(findings.peer_npi, findings.billing_npi) as held,
            beyond_lookback(findings.service_date, $lookback_start) as beyond_lookback,
            allowance_days(findings.payer) as allowance_days
        from audit.findings as findings
    )
),
lookback_change as (
    select policy_id, payer, claim_id, claim_line_number, rule_id, status,
        case when beyond_lookback then 'outside_lookback' else 'inside_lookback' end as event,
        null::date as new_date,
        case
            when beyond_lookback then 'date of service before ' || $lookback_start::varchar
            else 'date of service inside the lookback'
        end as note
    from finding
    where beyond_lookback <> coalesce(outside_lookback, false)
),
notice as (
    select policy_id, payer, claim_id, claim_line_number, rule_id, status, 'notified' as event,
        $as_of::date + allowance_days as new_date,
        'in the MCO package; due ' || ($as_of::date + allowance_days)::varchar as note
    from finding
    where notice_goes_out(status, notified_date, held, beyond_lookback)
),
due_date_set as (
    select policy_id, payer, claim_id, claim_line_number, rule_id, status, 'due_date' as event,
        notified_date + allowance_days as new_date,
        'due ' || (notified_date + allowance_days)::varchar
            || ', from the notice of ' || notified_date::varchar as note
    from finding
    where due_date_missing(status, notified_date, due_date)
),
past_deadline as (
    -- overdue_since: the first day past the deadline (the run may come later)
    select policy_id, payer, claim_id, claim_line_number, rule_id, status, 'overdue' as event,
        deadline + 1 as new_date,
        case
            when deadline < coalesce(due_date, notified_date + allowance_days)
                then 'planned date ' || deadline::varchar || ' passed without the corrected claim'
            else 'due ' || deadline::varchar || ' and not reprocessed'
        end as note
    from finding
    where deadline_passed(
        status, notified_date, overdue_since, held, beyond_lookback, deadline, $as_of
    )
)
select * from lookback_change
union all select * from notice
union all select * from due_date_set
union all select * from past_deadline;

insert into audit.finding_history (
    policy_id, payer, claim_id, claim_line_number, rule_id, run_id, changed_on, from_status,
    to_status, note, event, changed_by
)
select policy_id, payer, claim_id, claim_line_number, rule_id, $run_id, $as_of, status, status,
    note, event, 'claims-audit run'
from workflow_changes;

-- the updates, each on the findings as the changes above saw them: no update reads a column
-- an earlier one wrote (overdue reads the due date; the notice is for findings without one)

update audit.findings as findings
set overdue_since = deadline(
        findings.due_date, findings.notified_date, allowance_days(findings.payer),
        findings.response, findings.planned_date
    ) + 1
where deadline_passed(
    findings.status, findings.notified_date, findings.overdue_since,
    audit.finding_held(findings.peer_npi, findings.billing_npi),
    beyond_lookback(findings.service_date, $lookback_start),
    deadline(
        findings.due_date, findings.notified_date, allowance_days(findings.payer),
        findings.response, findings.planned_date
    ),
    $as_of
);

update audit.findings as findings
set due_date = findings.notified_date + allowance_days(findings.payer)
where due_date_missing(findings.status, findings.notified_date, findings.due_date);

update audit.findings as findings
set notified_date = $as_of, due_date = $as_of::date + allowance_days(findings.payer)
where notice_goes_out(
    findings.status, findings.notified_date,
    audit.finding_held(findings.peer_npi, findings.billing_npi),
    beyond_lookback(findings.service_date, $lookback_start)
);

update audit.findings as findings
set outside_lookback = beyond_lookback(findings.service_date, $lookback_start)
where beyond_lookback(findings.service_date, $lookback_start)
    <> coalesce(findings.outside_lookback, false);
