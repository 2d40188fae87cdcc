"""E-prescription center (医保电子处方中心): pre-check, signing, upload, circulation, dispensing, revocation.

Modules: ``catalogue`` (drugs with insurance codes), ``rules`` (pre-check), ``states`` (the forward-only
state machine), ``models`` (the HTTP edge's pydantic models), ``service`` (use cases), ``repo``
(storage), ``document`` (the printable PDF and what the doctor signs), ``ecredential`` (the 医保电子凭证
port), ``center`` (the NHSA center port, envelope and client), ``fhir`` (R4 export), ``wiring``
(composition from the environment). The stand-ins, demo data, HTTP client and CLI are tooling, in
``bianjie_dev.rx``.
"""
