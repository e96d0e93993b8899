"""Outcome reports for commissioners: the pure core (no database, no web).

``model`` holds what a report is computed from (facts already masked for the purpose
``commissioning``, under a pseudonym); ``episodes`` turns one client's facts into treatment
episodes; ``measures`` is the measure catalogue, as data, and its computation; and
``disclosure`` applies the NDTMS disclosure rule before anything is published. The tracked
projection that feeds them from the log lives beside this package.
"""
