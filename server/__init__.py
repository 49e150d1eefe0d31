"""HTTP service of latentcast: uploads, background encoding, streams and the decoder bundle."""
