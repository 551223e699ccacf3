"""A Connectathon-style conformance runner: test plans per actor, judged over the wire.

The runner talks to a peer (ours or a third party's) only through its SOAP, MLLP and command-line
interfaces, and judges every answer with its own XPath assertions and XSD validation, never with
the validators of :mod:`xds` (two implementations of one rule catch each other's mistakes).

Modules:

* :mod:`conformance_tests.model`: test plans, suites, cases, steps and expected outcomes; results.
* :mod:`conformance_tests.runner`: executes a plan against a peer and collects results.
* :mod:`conformance_tests.assertions`: the checks (envelope, WS-Addressing, status, errors, counts).
* :mod:`conformance_tests.response`: XPath views of ebRS responses.
* :mod:`conformance_tests.schemas`: the XSD validator over a schema directory.
* :mod:`conformance_tests.evidence`: every exchanged message, kept per step.
* :mod:`conformance_tests.transport`: SOAP over HTTP and HL7 v2 over MLLP, recorded.
* :mod:`conformance_tests.patients`: how test patients reach the peer (ITI-8, a command, a list).
* :mod:`conformance_tests.instances`: how DICOM test instances reach an imaging source (C-STORE,
  a command, loaded beforehand).
* :mod:`conformance_tests.report`: JUnit XML and a self-contained HTML report.
* :mod:`conformance_tests.console`: live progress and the summary table.
* :mod:`conformance_tests.cli`: the ``conformance`` command group.
* :mod:`conformance_tests.data`: our own test data (SubmitObjectsRequest builders, HL7 messages,
  DICOM studies).
* :mod:`conformance_tests.plans`: one test plan per actor.
"""
