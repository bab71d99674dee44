"""Who is calling (principal, credentials, tokens, keys), what it may do (rules) and what it is shown
(classification: levels, masks, k-anonymity)."""
