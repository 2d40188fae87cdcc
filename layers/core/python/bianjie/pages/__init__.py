"""The patient and staff pages (issue 13): built from web/pages, served same-origin with the APIs."""
