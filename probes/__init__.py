"""Signal sources: the probe kinds (``kinds/``), the transport they share (``context``, ``certs``),\none probe cycle (``cycle``), and the alert envelope and its webhook ingest."""
