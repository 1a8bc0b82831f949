-- the in-scope lines: H0038 (trimmed, any case) on the current version of a paid claim
select
    line.payer,
    line.claim_id,
    line.claim_line_number,
    version.chain_root_id,
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
    version.paid_date,
    line.session_id,
    line.delivery_id,
    line.source_row
from raw.latest_claim_lines as line
join audit.claim_versions as version
    on version.payer = line.payer and version.claim_id = line.claim_id
where version.is_current
    and upper(trim(line.hcpcs_code)) = $hcpcs_code
