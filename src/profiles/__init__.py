"""Profiles: data about XDS.b / XDS-I.b deployments (actors, transactions, options), the
affinity-domain code sets (:mod:`profiles.codes`) and presets. Imports only :mod:`xds`."""
