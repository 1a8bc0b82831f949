"""The states a finding can be in, by name: no import, so the command line's help reads them
without loading the engine."""

# a finding's status in the reprocessing log (docs/rules.md, docs/workflow.md)
LOG_STATUSES = ("open", "resolved_reprocessed", "superseded", "resolved_data_corrected", "waived")
# the states of the workflow an open finding may be in beside its status (docs/workflow.md)
WORKFLOW_STATES = ("disputed", "overdue", "held", "outside_lookback")
# an MCO's answers to a finding of its package (docs/workflow.md)
RESPONSES = ("agree", "dispute", "corrected")
