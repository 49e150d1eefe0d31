"""Frame autoencoder, entropy model and training for latentcast.

Data flow for one frame (shapes for a 3 x H x W input, latent stride 16)::

    x --g_a--> y (M x H/16 x W/16) --round--> y_hat --range coder--> bytes
    bytes --range coder--> y_hat --g_s--> x_hat

``g_a`` and the entropy model run on the server (torch). ``g_s`` ships to players
as ONNX and the entropy model as integer frequency tables (see ``export``).
"""
