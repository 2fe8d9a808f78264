"""A stress campaign: the default job's allocation, sessions of jobs, one driver run and what it
printed, failure signatures, shrinking, reproduction and bisection."""
