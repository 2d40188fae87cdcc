"""MDT consultation (互联网医院多学科会诊): collaboration scope, apply, the four-state records, video rooms,
signed reports, FHIR export. See docs/consult.md."""
