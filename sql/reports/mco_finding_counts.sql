-- how many findings each policy's sheet of one MCO's workbook holds: those its package shows
select policy_id, count(*) as findings
from audit.finding_states
where payer = $payer and in_mco_package
group by policy_id
