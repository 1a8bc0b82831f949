-- migration 0002: optional columns of the contract read by the second policy (Community
-- Health Worker): the Kansas provider type, and the bulletin an MCO implementation row is
-- limited to (blank: every policy). `if not exists`: a database made between release 0.1
-- and numbered migrations already has them.
alter table ref.providers add column if not exists provider_type varchar;
alter table ref.mco_implementation add column if not exists policy varchar;
