-- the in-scope lines of one pack: its codes ($codes; trimmed, any case) on the current
-- version of a paid claim.
-- claims absent from audit.claim_versions have no correction: they are current.
-- reads candidate_line: every claim line, or every copy of the lines of some claims; writes
-- temp table in_scope_line.
-- which copies are current is worked out on their keys alone, and their other columns read
-- once at the end: carried through every step, a policy-only extract's millions of lines
-- took 35 s instead of 15 s at 10M claim lines.

create or replace temp table latest_in_scope_copy as
with in_scope_copy as (
    select payer, claim_id, claim_line_number, delivery_id, source_row, paid_date
    from candidate_line
    where list_contains($codes, upper(trim(hcpcs_code)))
)
-- a later copy of the same line, under any code, replaces this one
select copy.*
from in_scope_copy as copy
anti join candidate_line as later
    on later.payer = copy.payer
    and later.claim_id = copy.claim_id
    and later.claim_line_number = copy.claim_line_number
    and (
        later.delivery_id > copy.delivery_id
        or (later.delivery_id = copy.delivery_id and later.source_row > copy.source_row)
    );

create or replace temp table current_in_scope_copy as
with claim_line_one as (
    -- line numbers start at 1: an in-scope line 1 is its claim's lowest line
    select payer, claim_id, paid_date
    from latest_in_scope_copy
    where claim_line_number = 1
),
claim_without_line_one as (
    select distinct payer, claim_id
    from latest_in_scope_copy
    anti join claim_line_one using (payer, claim_id)
),
claim_paid_date as (
    -- claim-level: the paid date of the latest copy of the claim's lowest line number
    select * from claim_line_one
    union all
    select line.payer, line.claim_id, arg_min(
        line.paid_date, (line.claim_line_number, -line.delivery_id, -line.source_row)
    ) as paid_date
    from candidate_line as line
    semi join claim_without_line_one using (payer, claim_id)
    group by line.payer, line.claim_id
)
select
    copy.delivery_id,
    copy.source_row,
    coalesce(version.chain_root_id, copy.claim_id) as chain_root_id,
    claim.paid_date
from latest_in_scope_copy as copy
join claim_paid_date as claim using (payer, claim_id)
left join audit.claim_versions as version using (payer, claim_id)
where coalesce(version.is_current, true);

-- a delivery's row number names one claim line copy
create or replace temp table in_scope_line as
select
    line.payer,
    line.claim_id,
    line.claim_line_number,
    copy.chain_root_id,
    line.member_id,
    coalesce(line.rendering_npi, line.billing_npi) as peer_npi,
    line.rendering_npi,
    line.billing_npi,
    upper(trim(line.hcpcs_code)) as hcpcs_code,
    upper(trim(line.hcpcs_modifier_1)) as hcpcs_modifier_1,
    upper(trim(line.hcpcs_modifier_2)) as hcpcs_modifier_2,
    upper(trim(line.hcpcs_modifier_3)) as hcpcs_modifier_3,
    upper(trim(line.hcpcs_modifier_4)) as hcpcs_modifier_4,
    line.claim_line_start_date as service_date,
    line.claim_line_end_date as service_end_date,
    line.place_of_service_code,
    line.service_unit_quantity,
    line.paid_amount,
    copy.paid_date,
    line.session_id,
    line.delivery_id,
    line.source_row
from candidate_line as line
join current_in_scope_copy as copy using (delivery_id, source_row)
where list_contains($codes, upper(trim(line.hcpcs_code)));

drop table latest_in_scope_copy;
drop table current_in_scope_copy;
