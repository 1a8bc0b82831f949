-- the workflow's clock, run on every run's as-of date $as_of after the log is updated and
-- before the MCO packages are written (docs/workflow.md):
--   a finding whose date of service is before $lookback_start (null: no lookback) is marked
--   outside_lookback, and one back inside it unmarked;
--   an open finding not notified yet that its MCO's package can show (not held, inside the
--   lookback) is notified tonight, due $as_of plus its MCO's allowance
--   (temp table reprocessing_allowance: payer, days; $default_days for any other MCO);
--   a notified finding without a due date (notified before due dates were kept) gets one;
--   an open finding past its deadline (its due date, or the planned date of a `corrected`
--   response when that comes first) becomes overdue tonight, unless held or outside the
--   lookback.
-- each change is a history row of the run (run_id).

create or replace temp table workflow_changes as
with finding as (
    select states.*,
        coalesce(states.service_date < $lookback_start, false) as beyond_lookback,
        coalesce(allowance.days, $default_days) as allowance_days
    from audit.finding_states as states
    left join reprocessing_allowance as allowance using (payer)
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
        $as_of::date + allowance_days::integer as new_date,
        'in the MCO package; due ' || ($as_of::date + allowance_days::integer)::varchar as note
    from finding
    where status = 'open' and notified_date is null and not held and not beyond_lookback
),
due_date_set as (
    select policy_id, payer, claim_id, claim_line_number, rule_id, status, 'due_date' as event,
        notified_date + allowance_days::integer as new_date,
        'due ' || (notified_date + allowance_days::integer)::varchar
            || ', from the notice of ' || notified_date::varchar as note
    from finding
    where status = 'open' and notified_date is not null and due_date is null
),
past_deadline as (
    -- overdue_since: the first day past the deadline (the run may come later)
    select policy_id, payer, claim_id, claim_line_number, rule_id, status, 'overdue' as event,
        deadline + 1 as new_date,
        case
            when deadline < coalesce(due_date, notified_date + allowance_days::integer)
                then 'planned date ' || deadline::varchar || ' passed without the corrected claim'
            else 'due ' || deadline::varchar || ' and not reprocessed'
        end as note
    from (
        select *,
            least(
                coalesce(due_date, notified_date + allowance_days::integer),
                case when response = 'corrected' then planned_date end
            ) as deadline
        from finding
        where status = 'open' and notified_date is not null and overdue_since is null
            and not held and not beyond_lookback
    )
    where deadline < $as_of
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

update audit.findings as findings
set outside_lookback = changes.event = 'outside_lookback'
from workflow_changes as changes
where changes.event in ('outside_lookback', 'inside_lookback')
    and findings.policy_id = changes.policy_id and findings.payer = changes.payer
    and findings.claim_id = changes.claim_id
    and findings.claim_line_number = changes.claim_line_number
    and findings.rule_id = changes.rule_id;

update audit.findings as findings
set notified_date = $as_of, due_date = changes.new_date
from workflow_changes as changes
where changes.event = 'notified'
    and findings.policy_id = changes.policy_id and findings.payer = changes.payer
    and findings.claim_id = changes.claim_id
    and findings.claim_line_number = changes.claim_line_number
    and findings.rule_id = changes.rule_id;

update audit.findings as findings
set due_date = changes.new_date
from workflow_changes as changes
where changes.event = 'due_date'
    and findings.policy_id = changes.policy_id and findings.payer = changes.payer
    and findings.claim_id = changes.claim_id
    and findings.claim_line_number = changes.claim_line_number
    and findings.rule_id = changes.rule_id;

update audit.findings as findings
set overdue_since = changes.new_date
from workflow_changes as changes
where changes.event = 'overdue'
    and findings.policy_id = changes.policy_id and findings.payer = changes.payer
    and findings.claim_id = changes.claim_id
    and findings.claim_line_number = changes.claim_line_number
    and findings.rule_id = changes.rule_id;
