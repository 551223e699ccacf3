"""The Document Consumer: client code for ITI-18 (query), ITI-43 (retrieve) and, as a simple
Document Source, ITI-41 (submit), and the ``xds consumer`` commands built on it."""
