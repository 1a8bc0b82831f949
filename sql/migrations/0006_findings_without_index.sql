-- migration 0006: the reprocessing log keeps its key without an index. A primary key is an
-- ART index, and DuckDB must hold an ART index in memory while rows go in: folding about 15
-- million findings into the log (30M policy-only claim lines) stopped at the 2 GB memory cap.
-- A finding is still one row per (policy_id, payer, claim_id, claim_line_number, rule_id):
-- the log update inserts only findings the log has not got (an anti join) and refuses a night
-- whose findings name one twice (pipelines/log/reprocessing_log.py). DuckDB cannot drop a
-- primary key in place: the table is rebuilt, every row copied, as migration 0003 did.

create table audit.findings_unindexed (
    policy_id varchar not null,
    payer varchar not null,
    claim_id varchar not null,
    claim_line_number integer not null,
    rule_id varchar not null,
    chain_root_id varchar not null,
    member_id varchar not null,
    peer_npi varchar,
    service_date date not null,
    paid_amount decimal(18, 2) not null,
    amount_at_risk decimal(18, 2),
    paid_date date not null,
    severity varchar not null,
    detail varchar not null,
    status varchar not null,
    first_found_date date not null,
    last_found_date date not null,
    resolved_date date,
    pre_implementation boolean not null,
    waived_reason varchar,
    waived_by varchar,
    mco_detail varchar,
    finding_id varchar,
    supersedes_finding_id varchar,
    billing_npi varchar,
    notified_date date,
    due_date date,
    overdue_since date,
    response varchar,
    response_date date,
    response_comment varchar,
    planned_date date,
    review varchar,
    outside_lookback boolean default false
);

insert into audit.findings_unindexed by name
select * from audit.findings;

drop table audit.findings;

alter table audit.findings_unindexed rename to findings;
