"""Operations: health probes, metrics, request ids and the access log (issue 15)."""
