"""The NHSA e-prescription center (医保电子处方中心平台) behind a port.

``port`` (what the service needs), ``envelope`` (the SM4-ECB + SM2-with-SM3 wrapper every message
travels in), ``client`` (the adapter: operations, interface codes, field mapping, transports). The local stand-in
center speaking the same envelope (for make run and tests) is ``bianjie_dev.rx.center.standin``.
"""
