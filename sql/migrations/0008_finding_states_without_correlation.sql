-- migration 0008: audit.finding_states as migration 0005 made it, with a finding's hold looked
-- up by its two NPIs in the holds in force rather than by a correlated subquery. DuckDB
-- planned that one as a copy of every finding joined back to itself: reading 5 million
-- findings through the view took 34 s, of which that copy 14 s.
create or replace view audit.finding_states as
with held_provider as (
    select distinct npi from audit.holds where released_on is null
),
with_hold as (
    select findings.*,
        coalesce(findings.peer_npi in (select npi from held_provider), false)
            or coalesce(findings.billing_npi in (select npi from held_provider), false)
            as held
    from audit.findings as findings
)
select *,
    notified_date is not null and not coalesce(outside_lookback, false) and not held
        as in_mco_package,
    status = 'open' and overdue_since is not null and not coalesce(outside_lookback, false)
        and not held as overdue
from with_hold;
