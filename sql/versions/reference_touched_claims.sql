-- the claims of the policy $policy_id whose facts a changed reference key (temp table
-- changed_reference_key, changed_reference_keys.sql) can change: those with an in-scope line
-- ($codes, any copy) that the key reaches. What a key reaches (scope.REFERENCE_KEYS):
--   member    the lines of that member_id
--   provider  the lines rendered or billed by that NPI
--   claim     the lines of that claim (qualifier: its payer)
--   payer     every line of that MCO, when the row is for every policy (no qualifier) or for
--             this one's bulletin ($bulletin)
--   caregiver the lines of every member the caregiver is a caregiver of, and of every claim
--             whose participants name it (a caregiver ID is one person across the file);
--             the current rows suffice: a row only the earlier snapshot had is a changed
--             row, and reaches its member or claim itself
-- Only claims among the policy's audited lines: any other in-scope claim was delivered since
-- the last audit and is touched anyway.

create or replace temp table reference_touched_claim as
with changed_caregiver as (
    select key_value as caregiver_id from changed_reference_key where reaches = 'caregiver'
),
member_key as (
    select key_value as member_id from changed_reference_key where reaches = 'member'
    union
    select caregiver.member_id
    from ref.caregivers as caregiver
    semi join changed_caregiver using (caregiver_id)
),
provider_key as (
    select key_value as npi from changed_reference_key where reaches = 'provider'
),
claim_key as (
    select qualifier as payer, key_value as claim_id
    from changed_reference_key
    where reaches = 'claim'
    union
    select participant.payer, participant.claim_id
    from ref.service_participants as participant
    semi join changed_caregiver using (caregiver_id)
),
payer_key as (
    select key_value as payer
    from changed_reference_key
    where reaches = 'payer' and (qualifier is null or qualifier = $bulletin)
),
audited_claim as (
    select distinct payer, claim_id from audit.audited_lines where policy_id = $policy_id
),
in_scope_line as materialized (
    select line.payer, line.claim_id, line.member_id, line.rendering_npi, line.billing_npi
    from raw.claim_lines as line
    semi join audited_claim using (payer, claim_id)
    where list_contains($codes, upper(trim(line.hcpcs_code)))
)
select payer, claim_id from in_scope_line semi join member_key using (member_id)
union
select line.payer, line.claim_id
from in_scope_line as line
semi join provider_key on provider_key.npi in (line.rendering_npi, line.billing_npi)
union
select payer, claim_id from in_scope_line semi join claim_key using (payer, claim_id)
union
select payer, claim_id from in_scope_line semi join payer_key using (payer);
