-- migration 0003: the log knows its policy. Findings, their history, runs and audited lines
-- carry the policy pack they belong to, so that two packs' logs never mix; a finding is
-- (policy_id, payer, claim_id, claim_line_number, rule_id). Every row written before policy
-- packs is Parent Peer Support's (KMAP bulletin 22321): the only policy there was.
-- DuckDB cannot change a primary key in place: findings and runs are rebuilt, every row
-- copied. A column added with a default and the default dropped again fills the existing
-- rows without an update (an update would stop the not-null constraint in this transaction).

create table audit.findings_with_policy (
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
    -- the part of paid_amount the finding puts at risk (a unit cap: the units over the
    -- limit); null: the whole paid amount. Totals use coalesce(amount_at_risk, paid_amount).
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
    primary key (policy_id, payer, claim_id, claim_line_number, rule_id)
);

insert into audit.findings_with_policy (
    policy_id, payer, claim_id, claim_line_number, rule_id, chain_root_id, member_id,
    peer_npi, service_date, paid_amount, amount_at_risk, paid_date, severity, detail, status,
    first_found_date, last_found_date, resolved_date, pre_implementation, waived_reason,
    waived_by, mco_detail
)
select 'h0038_parent_peer_support', payer, claim_id, claim_line_number, rule_id,
    chain_root_id, member_id, peer_npi, service_date, paid_amount, null, paid_date, severity,
    detail, status, first_found_date, last_found_date, resolved_date, pre_implementation,
    waived_reason, waived_by, mco_detail
from audit.findings;

drop table audit.findings;

alter table audit.findings_with_policy rename to findings;

-- one row per (run, policy): a run audits each pack it has something new for
create table audit.runs_with_policy (
    run_id integer not null,
    policy_id varchar not null,
    as_of date not null,
    last_delivery_id integer not null,
    policy_sha256 varchar not null,
    in_scope_lines bigint not null,
    findings_produced bigint not null,
    audit_identity varchar,
    primary key (run_id, policy_id)
);

insert into audit.runs_with_policy (
    run_id, policy_id, as_of, last_delivery_id, policy_sha256, in_scope_lines,
    findings_produced, audit_identity
)
select run_id, 'h0038_parent_peer_support', as_of, last_delivery_id, policy_sha256,
    in_scope_lines, findings_produced, audit_identity
from audit.runs;

drop table audit.runs;

alter table audit.runs_with_policy rename to runs;

alter table audit.finding_history
add column policy_id varchar default 'h0038_parent_peer_support';

alter table audit.finding_history alter column policy_id drop default;

alter table audit.finding_history alter column policy_id set not null;

alter table audit.audited_lines
add column policy_id varchar default 'h0038_parent_peer_support';

alter table audit.audited_lines alter column policy_id drop default;

alter table audit.audited_lines alter column policy_id set not null;
