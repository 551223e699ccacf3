"""Shared core of the IHE XDS.b / XDS-I.b actors: metadata, codecs, SOAP transport."""
