-- migration 0010: each audited line keeps what puts it in a group session (its place of
-- service, session ID and modifiers), so that a nightly run ties a changed line to its own
-- session's lines rather than to every line of its peer's day (scope.RELATED_LINES). Lines
-- recorded before have none of them, and are never read so: the code that reads them changes
-- every pack's audit identity (pipelines/audit/identity.py), so the next run of each pack is
-- a full audit, which records every line again.

alter table audit.audited_lines add column place_of_service_code varchar;
alter table audit.audited_lines add column session_id varchar;
alter table audit.audited_lines add column hcpcs_modifier_1 varchar;
alter table audit.audited_lines add column hcpcs_modifier_2 varchar;
alter table audit.audited_lines add column hcpcs_modifier_3 varchar;
alter table audit.audited_lines add column hcpcs_modifier_4 varchar;
