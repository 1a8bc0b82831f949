-- migration 0009: whether a finding is held, written once as the macro audit.finding_held
-- (a hold in force on its rendering or billing provider), for audit.finding_states and for
-- the workflow's clock (sql/log/refresh_workflow.sql). The clock updates findings in place,
-- each tested by its own columns, so it cannot read the view.
create or replace macro audit.finding_held(rendering_npi, billing_npi) as
    coalesce(
        rendering_npi in (select holds.npi from audit.holds as holds where holds.released_on is null),
        false
    )
    or coalesce(
        billing_npi in (select holds.npi from audit.holds as holds where holds.released_on is null),
        false
    );

create or replace view audit.finding_states as
with with_hold as (
    select findings.*, audit.finding_held(findings.peer_npi, findings.billing_npi) as held
    from audit.findings as findings
)
select *,
    notified_date is not null and not coalesce(outside_lookback, false) and not held
        as in_mco_package,
    status = 'open' and overdue_since is not null and not coalesce(outside_lookback, false)
        and not held as overdue
from with_hold;
