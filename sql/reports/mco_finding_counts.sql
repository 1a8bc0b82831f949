-- how many findings each policy's sheet of one MCO's workbook holds
select policy_id, count(*) as findings
from audit.findings
where payer = $payer
group by policy_id
