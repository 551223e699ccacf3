"""The registry's persistence: schema, engine set-up and migrations, writer and query reader."""
