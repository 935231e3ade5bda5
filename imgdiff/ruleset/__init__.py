"""Code for the rule set in rules/ (kept apart from the data on purpose): schema, predicates, loading."""
