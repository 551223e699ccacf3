"""HL7 v2 over MLLP, shared by every actor that listens to a hospital feed (ITI-8 at the registry;
ORU/ORM report and order feeds at the Edge Server)."""
