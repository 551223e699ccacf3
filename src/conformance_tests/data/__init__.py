"""Our own test data, written from the Technical Framework: metadata builders, codes, HL7 messages."""
