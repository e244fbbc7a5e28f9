"""Research on the model, above it: import third-party data, replay it as if time passed, validate
the scores (synthetic episodes, stored history, real datasets) and write the reports.

The running service never imports this package; ``insider_selling.cli`` registers its commands.
"""
