"""Identity: who a patient or staff member is, and the tokens that say so (issue 10 item 5; login in issue 12)."""
