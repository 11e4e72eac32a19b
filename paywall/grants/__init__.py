"""Access granted by hand (a journalist, a school, a settled complaint), like Ghost's
complimentary members: stored, audited, combined with any subscription, ended at its date."""
