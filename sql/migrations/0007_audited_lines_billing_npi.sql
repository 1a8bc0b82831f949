-- migration 0007: each audited line keeps its billing NPI beside its peer's. The provider view
-- (sql/reports/provider_summary.sql) counts every billing provider's in-scope lines; without
-- the NPI here it read the latest version of every claim line again each night, its slowest
-- step at state scale. Lines recorded before are given their latest version's billing NPI.
-- The table is rebuilt rather than updated in place: on 8 million lines an update took minutes,
-- the rebuild 24 s.

create table audit.audited_lines_rebuilt (
    payer varchar not null,
    claim_id varchar not null,
    claim_line_number integer not null,
    peer_npi varchar not null,
    member_id varchar not null,
    service_date date not null,
    policy_id varchar not null,
    billing_npi varchar
);

insert into audit.audited_lines_rebuilt
with latest_billing_npi as (
    select payer, claim_id, claim_line_number,
        arg_max(billing_npi, (delivery_id, source_row)) as billing_npi
    from raw.claim_lines
    semi join audit.audited_lines using (payer, claim_id, claim_line_number)
    group by payer, claim_id, claim_line_number
)
select line.payer, line.claim_id, line.claim_line_number, line.peer_npi, line.member_id,
    line.service_date, line.policy_id, latest_billing_npi.billing_npi
from audit.audited_lines as line
left join latest_billing_npi using (payer, claim_id, claim_line_number);

drop table audit.audited_lines;

alter table audit.audited_lines_rebuilt rename to audited_lines;
