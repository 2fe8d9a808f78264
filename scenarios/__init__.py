"""psa-stress, the Python side: scenarios, history checking and reports."""
