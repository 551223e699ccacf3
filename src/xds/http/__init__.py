"""HTTP adapters of the SOAP transport: the Starlette server app and the httpx clients.

* :mod:`xds.http.server`: :func:`~xds.http.server.soap_app`, :class:`~xds.http.server.SoapService`,
  :class:`~xds.http.server.SoapRequest`, :class:`~xds.http.server.SoapResponse`,
  :func:`~xds.http.server.run_server`, :class:`~xds.http.server.ServerThread`.
* :mod:`xds.http.client`: :class:`~xds.http.client.SoapClient`,
  :class:`~xds.http.client.AsyncSoapClient`, :class:`~xds.http.client.SoapReply`,
  :class:`~xds.http.client.SoapConnectionError`, :class:`~xds.http.client.SoapProtocolError`,
  and :class:`~xds.http.client.LeanAsyncSoapClient` (simple SOAP calls without httpx).
* :mod:`xds.http.http11`: the lean HTTP/1.1 client under it (:class:`~xds.http.http11.LeanHttpClient`).

Import from the submodules; this package imports neither, so a client-only process does not load
Starlette and uvicorn.
"""
