"""The Edge Server: the XDS-I.b Imaging Document Source (RAD TF-3 §4.68, §4.69, §4.55).

Modules: ``dicomstore`` (instance files indexed by patient, study, series, instance), ``scp``
(C-STORE / C-ECHO SCP), ``pacs`` (C-FIND / C-MOVE SCU to the hospital PACS), ``kos`` (the
imaging manifest), ``rad69`` + ``service`` (Retrieve Imaging Document Set), ``wado``
(WADO-URI), ``transcode`` (transfer syntaxes), ``app`` and ``cli`` (the process and ``xds source``).
"""
