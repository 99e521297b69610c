"""Reports a run leaves behind: report.json for machines, junit.xml for CI."""
