"""The runbook's analytics as pure logic: windows, tables, KPIs, the daily checklist."""
