"""Security pieces of the consent token (DESIGN §4): access codes, PINs, SAML assertions and the
WS-Security header that carries them. Pure functions over bytes, strings and elements; the key
files are the only I/O (:mod:`xds.security.keys`)."""
