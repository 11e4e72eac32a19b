"""The metered allowance: a few premium articles a month for readers without a subscription."""
