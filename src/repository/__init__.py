"""The Document Repository: ITI-41 / RAD-68 Provide and Register in, ITI-42 out to the registry,
ITI-43 Retrieve Document Set; a content-addressed document store with a SQLAlchemy index."""
